// "Verify in this browser" on an entry page: recompute the entry's RFC 6962 leaf hash and
// the root its RFC 9162 inclusion proof leads to, with WebCrypto SHA-256, and compare that
// root with the one in the signed checkpoint; where the browser has Ed25519 in WebCrypto,
// also check the checkpoint's signature (C2SP signed-note) with the verifier key given.
// Nothing is sent anywhere; the page says exactly what was checked.
"use strict";

(function () {
  const button = document.getElementById("verify-button");
  const out = document.getElementById("verify-result");
  if (!button || !out) return;

  const enc = new TextEncoder();
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const fromHex = (text) => {
    if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not hex: " + text.slice(0, 20));
    return Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
  };
  const fromB64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const concat = (...parts) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return all;
  };
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

  // RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, or null if impossible
  async function rootFromProof(index, size, leaf, proof) {
    if (index >= size) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([1], p, r));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  function parseNote(note) {
    const cut = note.indexOf("\n\n");
    if (cut < 0) throw new Error("the checkpoint is not a signed note");
    const text = note.slice(0, cut + 1);
    const lines = text.slice(0, -1).split("\n");
    const signatures = note.slice(cut + 2).split("\n").filter((l) => l.startsWith("\u2014 "))
      .map((l) => { const [, name, sig] = l.split(" "); return { name, raw: fromB64(sig) }; });
    return { text, origin: lines[0], size: Number(lines[1]), root: fromB64(lines[2]), signatures };
  }

  async function checkSignature(note, vkey) {
    // name+keyid+base64: the name has no "+", base64 may have some
    const text = vkey.trim(), first = text.indexOf("+"), second = text.indexOf("+", first + 1);
    const name = first > 0 ? text.slice(0, first) : "";
    const keyIdHex = second > first ? text.slice(first + 1, second) : "";
    let key = new Uint8Array(0);
    try { key = fromB64(second > first ? text.slice(second + 1) : ""); } catch (err) { /* below */ }
    if (!name || key.length !== 33 || key[0] !== 1) {
      return { ok: false, text: "the verifier key is not an Ed25519 C2SP vkey (name+keyid+base64)" };
    }
    const keyId = (await sha256(concat(enc.encode(name), [0x0a], key))).slice(0, 4);
    if (hex(keyId) !== keyIdHex) return { ok: false, text: "the verifier key's key ID does not match its name and key" };
    if (note.origin !== name) return { ok: false, text: `the checkpoint's origin ${note.origin} is not the key's name ${name}` };
    const line = note.signatures.find((s) => s.name === name && equal(s.raw.slice(0, 4), keyId));
    if (!line) return { ok: false, text: "the checkpoint carries no signature by that key" };
    let pub;
    try {
      pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (err) {
      return { ok: null, text: "checkpoint signature NOT checked: this browser has no Ed25519 in WebCrypto" };
    }
    const good = await crypto.subtle.verify({ name: "Ed25519" }, pub, line.raw.slice(4), enc.encode(note.text));
    return good ? { ok: true, text: `checkpoint signature by ${name} (Ed25519) verifies` }
      : { ok: false, text: `the checkpoint's signature by ${name} does NOT verify` };
  }

  function show(results, verdict, ok) {
    out.replaceChildren();
    const summary = document.createElement("p");
    summary.id = "verify-summary";
    summary.className = "alert " + (ok ? "ok" : "error");
    summary.textContent = verdict;
    const list = document.createElement("ul");
    list.className = "checks";
    for (const r of results) {
      const li = document.createElement("li");
      li.className = r.ok === true ? "pass" : (r.ok === null ? "skip" : "fail");
      li.textContent = (r.ok === true ? "✓ " : (r.ok === null ? "– " : "✗ ")) + r.text;
      list.append(li);
    }
    out.append(summary, list);
  }

  async function verify() {
    const results = [];
    if (!window.crypto || !crypto.subtle) {
      show([], "Not checked: this page is not a secure context (https or localhost), so WebCrypto is unavailable.", false);
      return;
    }
    try {
      const data = JSON.parse(document.getElementById("proof-data").textContent);
      const bytes = fromB64(data.entry_b64);
      const leaf = await sha256(concat([0], bytes));
      const leafOk = hex(leaf) === data.leaf_hash;
      results.push({ ok: leafOk, text: `leaf hash SHA-256(0x00 ‖ entry) = ${hex(leaf).slice(0, 16)}…` + (leafOk ? " matches the page" : " differs from the page's") });
      const proof = data.proof.map(fromHex);
      const root = await rootFromProof(data.index, data.tree_size, leaf, proof);
      const note = parseNote(data.checkpoint);
      const sizeOk = note.size === data.tree_size;
      results.push({ ok: sizeOk, text: `the checkpoint is for tree size ${note.size}` + (sizeOk ? ", the proof's" : `, not the proof's ${data.tree_size}`) });
      const rootOk = root !== null && equal(root, note.root);
      results.push({ ok: rootOk, text: rootOk ? `inclusion proof (${proof.length} hashes) leads to the checkpoint's root ${hex(note.root).slice(0, 16)}…`
        : "the inclusion proof does NOT lead to the checkpoint's root" });
      const sig = await checkSignature(note, document.getElementById("vkey").value);
      results.push(sig);
      const ok = leafOk && sizeOk && rootOk && sig.ok !== false;
      const what = sig.ok === true ? "leaf hash, inclusion proof and checkpoint signature"
        : "leaf hash and inclusion proof (checkpoint signature not checked)";
      show(results, ok ? `Verified in this browser: ${what}.` : "FAILED in this browser: see the checks below.", ok);
    } catch (err) {
      results.push({ ok: false, text: String(err.message || err) });
      show(results, "FAILED in this browser: the data could not be checked.", false);
    }
  }

  button.addEventListener("click", () => { verify(); });
})();
