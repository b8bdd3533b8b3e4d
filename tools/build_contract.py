"""Build contracts/RadledgerAnchor.json from contracts/RadledgerAnchor.sol with solc-js.

The compiler is the `solc` package pinned in contracts/package.json (install it with
``npm ci --ignore-scripts --prefix contracts``); the EVM version is pinned to paris so the
bytecode runs on every chain that has had the Merge. The same source and settings always give
the same bytes (the metadata hash at the end of the bytecode covers both), so ``--check``
rebuilds and fails if the checked-in artifact differs: it cannot drift silently.

    python tools/build_contract.py           # write contracts/RadledgerAnchor.json
    python tools/build_contract.py --check   # exit 1 if it is not what the source builds to
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
SOURCE = CONTRACTS / "RadledgerAnchor.sol"
ARTIFACT = CONTRACTS / "RadledgerAnchor.json"
NAME = "RadledgerAnchor"
EVM_VERSION = "paris"
OPTIMIZER_RUNS = 200

# solc's standard JSON in on stdin, out on stdout; the compiler's own version alongside
_COMPILE_JS = """
const solc = require("solc");
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
"""


def standard_input(source: str) -> dict[str, object]:
    """solc's standard JSON input for the anchor contract."""
    return {
        "language": "Solidity",
        "sources": {SOURCE.name: {"content": source}},
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "outputSelection": {SOURCE.name: {NAME: [
                "abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def build() -> dict[str, object]:
    """Compile the source; the artifact as a dict. Exits with solc's messages on an error."""
    node = shutil.which("node")
    if node is None or not (CONTRACTS / "node_modules" / "solc").is_dir():
        sys.exit("needs node and solc-js: npm ci --ignore-scripts --prefix contracts")
    source = SOURCE.read_text(encoding="utf-8")
    done = subprocess.run([node, "-e", _COMPILE_JS], cwd=CONTRACTS, check=True,
                          capture_output=True, text=True,
                          input=json.dumps(standard_input(source)))
    result = json.loads(done.stdout)
    output = result["output"]
    errors = [e["formattedMessage"] for e in output.get("errors", [])
              if e["severity"] == "error"]
    if errors:
        sys.exit("solc failed:\n" + "\n".join(errors))
    contract = output["contracts"][SOURCE.name][NAME]
    return {
        "contractName": NAME,
        "source": f"contracts/{SOURCE.name}",
        "sourceSha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
        "solcVersion": result["version"],
        "evmVersion": EVM_VERSION,
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
    }


def render(artifact: dict[str, object]) -> str:
    """The artifact file's exact text (sorted keys, so a rebuild is byte-identical)."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild and compare with the checked-in artifact")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        if not ARTIFACT.is_file() or ARTIFACT.read_text(encoding="utf-8") != text:
            print(f"{ARTIFACT.relative_to(ROOT)} is not what {SOURCE.relative_to(ROOT)} "
                  "builds to; run python tools/build_contract.py", file=sys.stderr)
            return 1
        print(f"{ARTIFACT.relative_to(ROOT)} matches its source")
        return 0
    ARTIFACT.write_text(text, encoding="utf-8")
    print(f"wrote {ARTIFACT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
