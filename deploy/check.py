#!/usr/bin/env python3
"""Checks deploy/ as far as a machine without docker or a cluster allows.

  python3 deploy/check.py PATH/TO/vouch

- every YAML file parses (PyYAML; skipped with a message if missing);
- every vouch flag in the compose files, the Kubernetes manifests and the
  systemd units exists in `vouch enclave --help` / `vouch node --help`, or
  is one of the replicated runtime's flags (reported as such while the
  binary lacks them);
- Kubernetes: a StatefulSet's serviceName is a headless Service of the same
  files, its selector matches its pod labels, probes name container ports,
  and every $(VAR) in args is in env; a runtime's probes use scheme HTTPS
  unless it runs with --insecure-http;
- every runtime URL (--enclave, --join, --advertise-url, VOUCH_ENCLAVE) is
  https:// unless --insecure-http is given: the runtime serves HTTPS;
- `systemd-analyze verify` on the units (with ExecStart pointing at the
  given binary), if systemd-analyze exists;
- `kubectl kustomize deploy/kubernetes` renders, if kubectl exists.

Exits 1 on the first class of failures it finds, printing them all.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Flags of the replicated runtime (issue 14, docs/ARCHITECTURE.md), used by
# compose.replicas.yaml and kubernetes/runtime.yaml.
REPLICA_FLAGS = {"--replica-id", "--raft-listen", "--advertise-url", "--bootstrap", "--join", "--simulated-root"}

failures = []


def fail(msg):
    failures.append(msg)


def help_flags(vouch, sub):
    out = subprocess.run([vouch, sub, "--help"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    flags = set()
    for line in text.splitlines():
        m = re.match(r"^  (-{1,2}[a-z0-9][a-z0-9-]*)\b", line)
        if m:
            flags.add(m.group(1))
    if not flags:
        fail(f"`vouch {sub} --help` lists no flags:\n{text}")
    # Go's flag package takes -x and --x alike.
    return flags | {"-" + f.lstrip("-") for f in flags} | {"--" + f.lstrip("-") for f in flags}


def check_args(where, args, known, notes):
    if not args or args[0] not in known:
        fail(f"{where}: not a vouch enclave or node command: {args}")
        return
    sub = args[0]
    insecure = "--insecure-http" in args
    for i, a in enumerate(args[1:], 1):
        if not a.startswith("-") or a == "-":
            continue
        flag = a.split("=", 1)[0]
        if flag in ("--enclave", "--join", "--advertise-url") and not insecure:
            url = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
            if not all(u.strip().startswith("https://") for u in url.split(",")):
                fail(f"{where}: {flag} {url}: the runtime serves HTTPS; use https:// (or run it with --insecure-http)")
        if flag in known[sub]:
            continue
        if sub == "enclave" and "--" + flag.lstrip("-") in REPLICA_FLAGS:
            notes.add(f"--{flag.lstrip('-')}")
            continue
        fail(f"{where}: vouch {sub} has no flag {flag}")


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    vouch = os.path.abspath(sys.argv[1])
    known = {sub: help_flags(vouch, sub) for sub in ("enclave", "node")}
    notes = set()
    try:
        import yaml
    except ImportError:
        yaml = None
        print("check: PyYAML is missing: YAML files not parsed, compose and Kubernetes flags not checked")

    if yaml:
        docs = {}
        for root, _, files in os.walk(HERE):
            for f in sorted(files):
                if f.endswith((".yaml", ".yml")):
                    path = os.path.join(root, f)
                    try:
                        docs[os.path.relpath(path, HERE)] = [d for d in yaml.safe_load_all(open(path)) if d is not None]
                    except yaml.YAMLError as e:
                        fail(f"{path}: {e}")
        for name, ds in docs.items():
            if name.startswith("compose"):
                for svc, spec in (ds[0].get("services") or {}).items():
                    if "command" in spec and spec["command"][0] in known:
                        check_args(f"{name} service {svc}", spec["command"], known, notes)
                    env = spec.get("environment") or {}
                    url = env.get("VOUCH_ENCLAVE", "https://") if isinstance(env, dict) else "https://"
                    if not str(url).startswith("https://"):
                        fail(f"{name} service {svc}: VOUCH_ENCLAVE {url}: the runtime serves HTTPS; use https://")
            if name.startswith("kubernetes/"):
                check_kubernetes(name, ds, known, notes)
        print(f"check: {len(docs)} YAML files parse: {', '.join(sorted(docs))}")

    units = [f for f in sorted(os.listdir(os.path.join(HERE, "systemd"))) if f.endswith(".service")]
    with tempfile.TemporaryDirectory() as tmp:
        for u in units:
            text = open(os.path.join(HERE, "systemd", u)).read()
            m = re.search(r"^ExecStart=(\S+) (.*)$", text, re.M)
            if not m:
                fail(f"systemd/{u}: no ExecStart")
                continue
            args = [a for a in m.group(2).split() if not a.startswith("$")]
            check_args(f"systemd/{u}", args, known, notes)
            with open(os.path.join(tmp, u), "w") as w:
                w.write(text.replace(m.group(0), f"ExecStart={vouch} {m.group(2)}"))
        if shutil.which("systemd-analyze"):
            out = subprocess.run(["systemd-analyze", "verify", "--man=no"] + [os.path.join(tmp, u) for u in units],
                                 capture_output=True, text=True, cwd=tmp)
            if out.returncode != 0 or out.stderr.strip():
                fail(f"systemd-analyze verify: {out.stdout}{out.stderr}")
            else:
                print(f"check: systemd-analyze verify: {', '.join(units)} OK")
        else:
            print("check: systemd-analyze is missing: units not verified")

    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", os.path.join(HERE, "kubernetes")], capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"kubectl kustomize: {out.stderr}")
        else:
            print(f"check: kubectl kustomize renders {out.stdout.count(chr(10) + 'kind: ') + out.stdout.startswith('kind: ')} objects")
    else:
        print("check: kubectl is missing: kustomization not rendered")

    if notes:
        missing = sorted(f for f in notes if f not in known["enclave"])
        if missing:
            print(f"check: replicated-runtime flags not in this binary yet: {' '.join(missing)}")
    if failures:
        print("check: FAILED", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    print("check: ok")
    return 0


def check_kubernetes(name, ds, known, notes):
    services = {d["metadata"]["name"]: d for d in ds if d.get("kind") == "Service"}
    pod_labels = [d["spec"]["template"]["metadata"].get("labels", {}) for d in ds if d.get("kind") in ("StatefulSet", "Deployment")]
    for svc in services.values():
        sel = svc["spec"].get("selector", {})
        if sel and not any(all(labels.get(k) == v for k, v in sel.items()) for labels in pod_labels):
            fail(f"{name} Service {svc['metadata']['name']}: selects {sel}, which no pod of {name} carries")
    for d in ds:
        if d.get("kind") not in ("StatefulSet", "Deployment"):
            continue
        where = f"{name} {d['kind']} {d['metadata']['name']}"
        spec = d["spec"]
        if d["kind"] == "StatefulSet":
            svc = services.get(spec.get("serviceName"))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                fail(f"{where}: serviceName {spec.get('serviceName')!r} is not a headless Service in {name}")
        labels = spec["template"]["metadata"].get("labels", {})
        for k, v in spec["selector"]["matchLabels"].items():
            if labels.get(k) != v:
                fail(f"{where}: selector {k}={v} does not match the pod labels {labels}")
        vols = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
        vols |= {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        for c in spec["template"]["spec"]["containers"] + spec["template"]["spec"].get("initContainers", []):
            cw = f"{where} container {c['name']}"
            ports = {p.get("name") for p in c.get("ports", [])}
            args = [str(a) for a in c.get("args", [])]
            runtime = bool(args) and args[0] == "enclave" and "--insecure-http" not in args
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                p = c.get(probe, {}).get("httpGet")
                if p and isinstance(p["port"], str) and p["port"] not in ports:
                    fail(f"{cw}: {probe} names port {p['port']!r}, not one of {ports}")
                if p and runtime and p.get("scheme") != "HTTPS":
                    fail(f"{cw}: {probe} must use scheme: HTTPS (the runtime serves HTTPS unless --insecure-http)")
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    fail(f"{cw}: mounts {m['name']!r}, which is no volume of the pod")
            env = {e["name"] for e in c.get("env", [])}
            for a in c.get("args", []) + c.get("command", []):
                for var in re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", str(a)):
                    if var not in env:
                        fail(f"{cw}: $({var}) in args but not in env")
            if c.get("image", "").startswith("vouch"):
                if not c.get("livenessProbe") or not c.get("readinessProbe"):
                    fail(f"{cw}: wants a liveness and a readiness probe")
                check_args(cw, c.get("args", []), known, notes)


if __name__ == "__main__":
    sys.exit(main())
