// vouch dashboard: polls GET /cluster, keeps a timeline of what changed,
// and verifies the held certificate in the browser (WebCrypto Ed25519 and
// SHA-256) against the attested receipt key the node reports. The signed
// message is rebuilt from the receipt's fields exactly as docs/FORMATS.md
// ("Receipt") defines it.
"use strict";

const POLL_MS = 500;
const enc = new TextEncoder();
const $ = (id) => document.getElementById(id);

// ---- canonical encoding (docs/FORMATS.md, "Canonical encoding") ----

function u32(n) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; }
function canonBytes(p) { return concat([u32(p.length), p]); }
function canonString(s) { return canonBytes(enc.encode(s)); }
function canonUint64(v) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, v); return b; }
function canonInt64(v) { const b = new Uint8Array(8); new DataView(b.buffer).setBigInt64(0, v); return b; }
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

function isDigest(s) { return typeof s === "string" && /^[0-9a-f]{64}$/.test(s); }
function fromHex(s) {
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(2 * i, 2), 16);
  return b;
}
function toHex(b) { return Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join(""); }
function fromB64(s) {
  if (typeof s !== "string") throw new Error("not a base64 string");
  const bin = atob(s);
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return b;
}

// timeNanos parses an RFC 3339 time to Unix nanoseconds as a BigInt,
// without the millisecond rounding of Date: the receipt signs the time to
// the nanosecond.
function timeNanos(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) throw new Error("time " + JSON.stringify(s) + " is not RFC 3339");
  let ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (m[8] !== "Z") {
    const sign = m[8][0] === "-" ? -1 : 1;
    ms -= sign * (+m[8].slice(1, 3) * 60 + +m[8].slice(4, 6)) * 60000;
  }
  return BigInt(ms) * 1000000n + BigInt((m[7] || "").padEnd(9, "0"));
}

// receiptMessage returns the bytes the receipt's signature covers:
// String("vouch/receipt/v1") String(function_id) Bytes(function_checksum)
// Bytes(input_sha256) Bytes(output_sha256) Uint64(seq) Int64(time ns)
// String(key_id), the three digests as their 32 raw bytes.
function receiptMessage(r) {
  for (const f of ["function_checksum", "input_sha256", "output_sha256", "key_id"]) {
    if (!isDigest(r[f])) throw new Error(f + " is not 64 lowercase hex digits");
  }
  if (typeof r.function_id !== "string" || !/^[A-Za-z0-9._-]{1,128}$/.test(r.function_id)) throw new Error("function_id is malformed");
  if (!Number.isSafeInteger(r.seq) || r.seq < 1) throw new Error("seq " + r.seq + " cannot be checked exactly here");
  return concat([
    canonString("vouch/receipt/v1"),
    canonString(r.function_id),
    canonBytes(fromHex(r.function_checksum)),
    canonBytes(fromHex(r.input_sha256)),
    canonBytes(fromHex(r.output_sha256)),
    canonUint64(BigInt(r.seq)),
    canonInt64(timeNanos(r.time)),
    canonString(r.key_id),
  ]);
}

class Unavailable extends Error {}

// verifyCertificate checks the view's certificate and returns the leader
// and seq (term) its output names; it throws an Error saying why it does
// not verify, or Unavailable when this browser cannot check it.
async function verifyCertificate(v) {
  const c = v.certificate, rt = v.runtime;
  if (!c) throw new Unavailable("the node holds no certificate yet");
  if (!window.isSecureContext || !crypto.subtle) throw new Unavailable("WebCrypto needs a secure context: open the page at http://127.0.0.1, http://localhost or https");
  if (!rt.receipt_key) throw new Unavailable("the node has not attested the runtime yet");
  const key = fromB64(rt.receipt_key);
  if (key.length !== 32) throw new Error("the receipt key is " + key.length + " bytes, not 32");
  const r = c.receipt;
  const keyID = toHex(await crypto.subtle.digest("SHA-256", key));
  if (keyID !== r.key_id) throw new Error("signed by key " + String(r.key_id).slice(0, 16) + "…, the attested key is " + keyID.slice(0, 16) + "…");
  if (rt.key_id !== keyID) throw new Error("the node reports key_id " + String(rt.key_id).slice(0, 16) + "…, but the key's fingerprint is " + keyID.slice(0, 16) + "…");
  if (r.function_id !== rt.function_id || r.function_checksum !== rt.function_checksum) throw new Error("signed for another function (" + r.function_id + ")");
  const output = fromB64(c.output);
  const outSum = toHex(await crypto.subtle.digest("SHA-256", output));
  if (outSum !== r.output_sha256) throw new Error("sha256(output) is " + outSum.slice(0, 16) + "…, the receipt signs " + String(r.output_sha256).slice(0, 16) + "…");
  const msg = receiptMessage(r);
  const sig = fromB64(r.signature);
  if (sig.length !== 64) throw new Error("the signature is " + sig.length + " bytes, not 64");
  let pub;
  try {
    pub = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    throw new Unavailable("this browser's WebCrypto has no Ed25519 (" + e.name + ")");
  }
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, pub, sig, msg))) throw new Error("the Ed25519 signature does not verify under key " + keyID.slice(0, 16) + "…");
  const o = JSON.parse(new TextDecoder().decode(output));
  if (o.cluster !== v.cluster) throw new Error("the certificate is for cluster " + JSON.stringify(o.cluster));
  const seq = v.scheme === "term" ? o.term : r.seq;
  if (o.leader !== v.leader || seq !== v.seq) throw new Error("the certificate names leader " + JSON.stringify(o.leader) + " (" + seq + "), the node reports " + JSON.stringify(v.leader) + " (" + v.seq + ")");
  return { leader: o.leader, seq, keyID };
}

// ---- state and rendering ----

let last = null;        // the previous view
let clockSkew = 0;      // node clock minus browser clock, ms
let verified = null;    // {sig, result|error}
let failing = false;
const timeline = [];

function addEvent(text, cls) {
  timeline.unshift({ at: new Date(), text, cls: cls || "" });
  if (timeline.length > 200) timeline.pop();
  const ol = $("timeline");
  const li = document.createElement("li");
  if (cls) li.className = cls;
  const t = document.createElement("time");
  t.textContent = new Date().toLocaleTimeString();
  li.append(t, document.createTextNode(text));
  ol.prepend(li);
  while (ol.children.length > 200) ol.lastChild.remove();
}

function row(tbody, k, v, mono) {
  const tr = document.createElement("tr");
  const a = document.createElement("td"), b = document.createElement("td");
  a.textContent = k;
  b.textContent = v;
  if (mono) b.className = "mono";
  tr.append(a, b);
  tbody.append(tr);
}

function ago(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return s.toFixed(1) + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

function nodeNow() { return Date.now() + clockSkew; }

function render(v) {
  $("cluster").textContent = v.cluster;
  $("node").textContent = v.node;
  document.title = "vouch " + v.cluster + ": " + (v.leader || "no leader");
  $("leader").textContent = v.leader || "none";
  $("seq-label").textContent = v.scheme === "term" ? "term" : "seq";
  $("seq").textContent = v.leader ? String(v.seq) : "—";

  const mb = $("members").tBodies[0];
  mb.replaceChildren();
  for (const m of v.members) {
    const tr = document.createElement("tr");
    if (m.name === v.leader) tr.className = "leader";
    for (const [text, cls] of [[m.name], [m.addr || ""], [m.state, "state-" + m.state], [m.in_view ? "yes" : "no"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    mb.append(tr);
  }

  const cb = $("cert").tBodies[0];
  cb.replaceChildren();
  const c = v.certificate;
  if (c) {
    const r = c.receipt;
    let out = "";
    try { out = new TextDecoder().decode(fromB64(c.output)); } catch (e) { out = "(undecodable: " + e.message + ")"; }
    row(cb, "output", out, true);
    row(cb, "function_id", r.function_id, true);
    row(cb, "function_checksum", r.function_checksum, true);
    row(cb, "input_sha256", r.input_sha256, true);
    row(cb, "output_sha256", r.output_sha256, true);
    row(cb, "seq", String(r.seq), true);
    row(cb, "time", r.time, true);
    row(cb, "key_id", r.key_id, true);
    row(cb, "signature", r.signature, true);
    row(cb, "from", c.from + ", accepted " + c.accepted_at);
  } else {
    row(cb, "certificate", "none held yet");
  }

  const rb = $("runtime").tBodies[0];
  rb.replaceChildren();
  const rt = v.runtime;
  row(rb, "url", rt.url, true);
  row(rb, "attestation", rt.simulated ? "SIMULATED (development only)" : rt.platform || "not attested");
  row(rb, "receipt key", rt.receipt_key || "—", true);
  row(rb, "key_id", rt.key_id || "—", true);
  row(rb, "state", rt.state);
  row(rb, "accepted", String(v.certificates_accepted) + " certificates");
  const rej = Object.entries(v.rejections || {}).map(([k, n]) => k + " " + n).join(", ");
  row(rb, "rejected", rej || "none");
  tick();
}

// tick refreshes the clocks: lease countdown and certificate age.
function tick() {
  const v = last;
  if (!v) return;
  if (v.lease_until) {
    const left = Date.parse(v.lease_until) - nodeNow();
    $("lease").textContent = left > 0 ? (left / 1000).toFixed(1) + " s" : "lapsed";
    $("lease-detail").textContent = "of " + (v.lease_ms / 1000).toFixed(1) + " s, renewed by each certificate";
  } else {
    $("lease").textContent = "—";
    $("lease-detail").textContent = v.scheme === "term" ? "" : "member-list scheme: no lease";
  }
  if (v.certificate) {
    $("issued").textContent = ago(nodeNow() - Date.parse(v.certificate.issued_at));
    $("issued-detail").textContent = v.certificate.issued_at;
  } else {
    $("issued").textContent = "—";
    $("issued-detail").textContent = "";
  }
}

function showVerdict(state, title, detail) {
  const el = $("verdict");
  el.dataset.state = state;
  $("verdict-title").textContent = title;
  $("verdict-detail").textContent = detail;
}

async function check(v) {
  const c = v.certificate;
  const id = c ? [c.output, c.receipt.signature, c.receipt.time, v.runtime.receipt_key, v.leader, v.seq].join("|") : "none";
  if (verified && verified.id === id) return;
  let result, error, unavailable = false;
  try {
    result = await verifyCertificate(v);
  } catch (e) {
    error = e.message;
    unavailable = e instanceof Unavailable;
  }
  const was = verified;
  verified = { id, result, error };
  if (result) {
    showVerdict("verified", "✓ verified in your browser",
      "Ed25519 signature of the runtime's receipt key " + result.keyID.slice(0, 16) + "… over the receipt, and SHA-256 of the output, checked here with WebCrypto: leader " + result.leader + ", " + (v.scheme === "term" ? "term " : "seq ") + result.seq + ".");
  } else if (unavailable) {
    showVerdict("unavailable", "cannot verify here", error);
  } else {
    showVerdict("not-verified", "✗ NOT VERIFIED", error);
    if (!was || was.error !== error) addEvent("certificate NOT VERIFIED: " + error, "bad");
  }
}

function diff(prev, v) {
  if (!prev) {
    addEvent("watching " + v.cluster + " through node " + v.node + (v.leader ? ": leader " + v.leader + " (" + v.scheme + " " + v.seq + ")" : ": no leader yet"));
    return;
  }
  if (prev.leader !== v.leader) {
    if (v.leader) addEvent((prev.leader ? "failover: " + prev.leader + " → " : "leader elected: ") + v.leader + " (" + v.scheme + " " + v.seq + ")", "good");
    else addEvent("no leader: " + prev.leader + "'s certificate is gone", "bad");
  } else if (v.scheme === "term" && prev.seq !== v.seq) {
    addEvent("new term " + v.seq + ", leader " + v.leader);
  }
  const states = new Map(prev.members.map((m) => [m.name, m.state]));
  for (const m of v.members) {
    const was = states.get(m.name);
    if (was === undefined) addEvent("member " + m.name + " joined (" + m.state + ")");
    else if (was !== m.state) addEvent("member " + m.name + ": " + was + " → " + m.state, m.state === "alive" ? "" : "bad");
  }
  for (const [reason, n] of Object.entries(v.rejections || {})) {
    const before = (prev.rejections || {})[reason] || 0;
    if (n > before) addEvent("rejected " + (n - before) + " certificate" + (n - before > 1 ? "s" : "") + ": " + reason, "bad");
  }
}

async function poll() {
  try {
    const sent = Date.now();
    const resp = await fetch("cluster", { cache: "no-store" });
    if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
    const v = await resp.json();
    const got = Date.now();
    clockSkew = Date.parse(v.time) - (sent + got) / 2;
    if (failing) addEvent("node " + v.node + " answers again", "good");
    failing = false;
    $("conn").textContent = "live, updated " + new Date().toLocaleTimeString();
    diff(last, v);
    last = v;
    render(v);
    await check(v);
  } catch (e) {
    if (!failing) addEvent("the node does not answer: " + e.message, "bad");
    failing = true;
    $("conn").textContent = "the node does not answer (" + e.message + "); retrying";
  }
  setTimeout(poll, POLL_MS);
}

setInterval(tick, 100);
poll();
