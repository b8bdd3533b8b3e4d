// Hardhat 2 configuration for the dev node the anchor tests start
// (`node node_modules/hardhat/internal/cli/cli.js node --port N`: chain 31337, automining).
// The contract is not built through Hardhat but by tools/build_contract.py with solc-js. Should
// a Hardhat compile run anyway, it uses the solc-js pinned in package.json instead of
// downloading a compiler (Hardhat's documented override of TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD).
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");
const solc = require("solc");
const solcVersion = require("solc/package.json").version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion !== solcVersion) {
    return runSuper();
  }
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: solcVersion,
    longVersion: solc.version(),
  };
});

module.exports = {
  solidity: {
    version: solcVersion,
    settings: { evmVersion: "paris", optimizer: { enabled: true, runs: 200 } },
  },
  // nothing to compile here: keep Hardhat away from the contract folder and node_modules
  paths: { sources: "./hardhat-sources", cache: "./.hardhat-cache", artifacts: "./.hardhat-artifacts" },
  networks: { hardhat: { chainId: 31337 } },
};
