"""Structure and cross-file checks of the deployment files that their own tools cannot see.

    python3 deploy/tests/check_files.py compose    # compose/, nginx-stream/, grafana/provisioning/
    python3 deploy/tests/check_files.py k8s        # deploy/k8s/
    python3 deploy/tests/check_files.py k8s-zookeeper  # deploy/k8s-zookeeper/ (the overlay)

Run by deploy/tests/files.rs. Prints every problem found and exits 1 if there was any.
"""
import glob
import os
import re
import sys
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def load(path):
    with open(os.path.join(ROOT, path)) as f:
        return yaml.safe_load(f)


def arg_value(command, flag):
    """The value after `flag` in a command list, or None."""
    return command[command.index(flag) + 1] if flag in command else None


def check_compose():
    compose = load("compose/docker-compose.yml")
    services = compose["services"]
    shards = sorted(s for s in services if re.fullmatch(r"shard-\d+", s))
    proxies = sorted(s for s in services if re.fullmatch(r"proxy-\d+", s))
    check(len(shards) == 3 and len(proxies) == 2, f"expected 3 shards and 2 proxies, found {shards} {proxies}")
    for name in [*shards, *proxies, "nginx", "prometheus", "grafana"]:
        check(services[name].get("restart") in ("unless-stopped", "always"), f"{name}: no restart policy")

    volumes_seen = set()
    for name in shards:
        s = services[name]
        check(s["build"]["dockerfile"] == "shard/Dockerfile", f"{name}: not built from shard/Dockerfile")
        cmd = s["command"]
        check(arg_value(cmd, "--bind") == "0.0.0.0", f"{name}: must --bind 0.0.0.0 in a container")
        check(arg_value(cmd, "--dir") == "/data", f"{name}: snapshots must go to --dir /data")
        check(arg_value(cmd, "--appendonly") == "yes" and arg_value(cmd, "--appendfsync") == "everysec",
              f"{name}: the append-only log must be on with everysec (the README's durability table)")
        check(arg_value(cmd, "--port") == "7001" and arg_value(cmd, "--metrics-port") == "9121",
              f"{name}: ports must be 7001 and 9121 (the proxy list and Prometheus targets use them)")
        mounts = [v for v in s.get("volumes", []) if v.endswith(":/data")]
        check(len(mounts) == 1, f"{name}: needs exactly one volume on /data")
        for m in mounts:
            vol = m.split(":")[0]
            check(vol in (compose.get("volumes") or {}), f"{name}: {vol} is not a named volume")
            check(vol not in volumes_seen, f"{name}: shares volume {vol} with another shard")
            volumes_seen.add(vol)
        check("healthcheck" in s, f"{name}: no healthcheck (depends_on waits for it)")

    for name in proxies:
        p = services[name]
        check(p["build"]["dockerfile"] == "proxy/Dockerfile", f"{name}: not built from proxy/Dockerfile")
        cmd = p["command"]
        check(arg_value(cmd, "--bind") == "0.0.0.0", f"{name}: must --bind 0.0.0.0 in a container")
        check(arg_value(cmd, "--port") == "6380" and arg_value(cmd, "--metrics-port") == "9120",
              f"{name}: ports must be 6380 and 9120 (NGINX and Prometheus use them)")
        deps = p.get("depends_on", {})
        for shard in shards:
            check(isinstance(deps, dict) and deps.get(shard, {}).get("condition") == "service_healthy",
                  f"{name}: must depend on {shard} being healthy")
        check(arg_value(cmd, "--config") == "/etc/ringcache/proxy.toml", f"{name}: must read /etc/ringcache/proxy.toml")
        check("./ringcache:/etc/ringcache:ro" in p.get("volumes", []), f"{name}: must mount ./ringcache (a directory)")

    with open(os.path.join(ROOT, "compose/ringcache/proxy.toml"), "rb") as f:
        listed = tomllib.load(f)["shards"]
    check(listed == [f"{s}={s}:7001" for s in shards],
          f"compose/ringcache/proxy.toml lists {listed}, Compose defines {shards}")

    nginx = services["nginx"]
    deps = nginx.get("depends_on", {})
    for proxy in proxies:
        check(deps.get(proxy, {}).get("condition") == "service_healthy", f"nginx: must depend on {proxy} being healthy")
    check(any(str(p).endswith(":6379") and "RINGCACHE_NGINX_PORT:-6379" in str(p) for p in nginx["ports"]),
          "nginx: must publish container port 6379 on host port 6379 by default")
    check("../nginx-stream/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"], "nginx: must mount nginx-stream/nginx.conf")
    with open(os.path.join(ROOT, "nginx-stream/nginx.conf")) as f:
        conf = f.read()
    upstream = re.findall(r"^\s*server\s+([\w.-]+:\d+)\s", conf, re.M)
    check(upstream == [f"{p}:6380" for p in proxies], f"nginx.conf upstream {upstream}, Compose proxies {proxies}")
    for directive in ["least_conn;", "max_fails=", "fail_timeout=", "proxy_connect_timeout", "proxy_timeout",
                      "proxy_socket_keepalive on;", "so_keepalive=on", "listen 6379"]:
        check(directive in conf, f"nginx.conf: no {directive}")

    prom = load("compose/prometheus/prometheus.yml")
    jobs = {j["job_name"]: sorted(t for sc in j["static_configs"] for t in sc["targets"]) for j in prom["scrape_configs"]}
    check(jobs.get("ringcache-shard") == [f"{s}:9121" for s in shards], f"Prometheus shard targets {jobs.get('ringcache-shard')}")
    check(jobs.get("ringcache-proxy") == [f"{p}:9120" for p in proxies], f"Prometheus proxy targets {jobs.get('ringcache-proxy')}")

    datasource = load("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    check(datasource["uid"] == "ringcache-prometheus", "the Grafana datasource uid must stay ringcache-prometheus")
    check(datasource["url"] == "http://prometheus:9090", "the Grafana datasource must point at the prometheus service")
    provider = load("grafana/provisioning/dashboards/ringcache.yml")["providers"][0]
    grafana = services["grafana"]
    check(f"../grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"],
          "grafana: the dashboards directory must be mounted where the provider reads it")
    check("../grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"], "grafana: provisioning not mounted")


RECOMMENDED = ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
               "app.kubernetes.io/part-of", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"]


def check_k8s():
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "deploy/k8s/*.yaml")))
    kustomization = load("deploy/k8s/kustomization.yaml")
    resources = [f for f in files if f != "kustomization.yaml"]
    check(sorted(kustomization["resources"]) == resources, f"kustomization.yaml lists {kustomization['resources']}, the directory has {resources}")
    docs = {}
    for f in resources:
        for doc in yaml.safe_load_all(open(os.path.join(ROOT, "deploy/k8s", f))):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
            labels = doc["metadata"].get("labels", {})
            for label in RECOMMENDED:
                check(label in labels, f"{f}: {doc['kind']} {doc['metadata']['name']} lacks label {label}")
    workloads = [d for (kind, _), d in docs.items() if kind in ("StatefulSet", "Deployment")]
    for w in workloads:
        name = f"{w['kind']} {w['metadata']['name']}"
        selector = w["spec"]["selector"]["matchLabels"]
        template_labels = w["spec"]["template"]["metadata"]["labels"]
        check(all(template_labels.get(k) == v for k, v in selector.items()), f"{name}: selector does not match its pods")
        for label in RECOMMENDED[:5]:
            check(label in template_labels, f"{name}: pod template lacks label {label}")
        for c in w["spec"]["template"]["spec"]["containers"]:
            for field in ["readinessProbe", "livenessProbe"]:
                check(field in c, f"{name}: container {c['name']} has no {field}")
            check("requests" in c.get("resources", {}), f"{name}: container {c['name']} has no resource requests")
            check(arg_value(c["args"], "--bind") == "0.0.0.0", f"{name}: must --bind 0.0.0.0")

    sts = docs[("StatefulSet", "ringcache-shard")]
    headless = docs.get(("Service", sts["spec"]["serviceName"]))
    check(headless is not None and headless["spec"].get("clusterIP") == "None", "the StatefulSet's serviceName must be a headless Service")
    check(bool(sts["spec"].get("volumeClaimTemplates")), "shards need a volume claim each")
    shard_args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    mounts = {m["mountPath"] for m in sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    check(arg_value(shard_args, "--dir") in mounts, "the shard's --dir must be its volume")
    check(arg_value(shard_args, "--appendonly") == "yes" and arg_value(shard_args, "--appendfsync") == "everysec",
          "the shards' append-only log must be on with everysec (the README's durability table)")
    replicas = sts["spec"]["replicas"]
    config = docs[("ConfigMap", "ringcache-proxy")]
    listed = tomllib.loads(config["data"]["proxy.toml"])["shards"]
    expected = [f"shard-{i}=ringcache-shard-{i}.{sts['spec']['serviceName']}:7001" for i in range(replicas)]
    check(listed == expected, f"the ConfigMap lists {listed}; {replicas} replicas need {expected}")

    deployment = docs[("Deployment", "ringcache-proxy")]
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = pod["containers"][0]["volumeMounts"][0]
    check(volumes[mount["name"]].get("configMap", {}).get("name") == "ringcache-proxy", "the proxies must mount the ConfigMap")
    check("subPath" not in mount, "a subPath mount would never see ConfigMap updates")
    check(arg_value(pod["containers"][0]["args"], "--config") == mount["mountPath"] + "/proxy.toml", "--config must be the mounted proxy.toml")
    service = docs[("Service", "ringcache")]
    check(service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"], "the ringcache Service must select the proxies")


def json_pointer_add(doc, path, value):
    """Applies a JSON patch `add` (the only op the overlay uses)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    target = doc
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target.insert(len(target) if last == "-" else int(last), value)
    else:
        target[last] = value


def check_k8s_zookeeper():
    """deploy/k8s-zookeeper: its patches apply to the base, the result validates, and shards and proxies
    name the same ensemble and cluster."""
    import subprocess
    import tempfile
    overlay = load("deploy/k8s-zookeeper/kustomization.yaml")
    check(overlay["resources"] == ["../k8s"], "the overlay must build on ../k8s")
    base = {}
    for f in load("deploy/k8s/kustomization.yaml")["resources"]:
        for doc in yaml.safe_load_all(open(os.path.join(ROOT, "deploy/k8s", f))):
            base[(doc["kind"], doc["metadata"]["name"])] = doc
    for patch in overlay["patches"]:
        target = patch["target"]
        doc = base.get((target["kind"], target["name"]))
        check(doc is not None, f"the overlay patches {target}, which the base does not define")
        for op in yaml.safe_load(patch["patch"]):
            check(op["op"] == "add", f"unexpected patch op {op['op']}")
            if op["path"].endswith("/env"):
                container = doc["spec"]["template"]["spec"]["containers"][0]
                check("env" not in container, f"{target['name']}: the base has env the overlay would replace")
            json_pointer_add(doc, op["path"], op["value"])
    env = lambda kind, name: {e["name"]: e.get("value") for e in base[(kind, name)]["spec"]["template"]["spec"]["containers"][0]["env"]}
    shard, proxy = env("StatefulSet", "ringcache-shard"), env("Deployment", "ringcache-proxy")
    for key in ["RINGCACHE_ZOOKEEPER", "RINGCACHE_CLUSTER"]:
        check(shard.get(key) and shard.get(key) == proxy.get(key), f"shards and proxies must share {key}")
    sts = base[("StatefulSet", "ringcache-shard")]
    check(shard.get("RINGCACHE_ADVERTISE") == f"$(POD_NAME).{sts['spec']['serviceName']}:7001",
          "a shard must advertise its stable name under the headless Service")
    check(shard.get("RINGCACHE_NAME") == "$(POD_NAME)", "a shard's ring name must be its pod name")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for (kind, name), doc in base.items():
            path = os.path.join(tmp, f"{kind}-{name}.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(doc, f)
            paths.append(path)
        r = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *paths],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"kubernetes-validate rejected the overlay's manifests: {r.stdout}{r.stderr}")


if __name__ == "__main__":
    {"compose": check_compose, "k8s": check_k8s, "k8s-zookeeper": check_k8s_zookeeper}[sys.argv[1]]()
    for p in problems:
        print("problem:", p)
    print(f"{sys.argv[1]}: {len(problems)} problems")
    sys.exit(1 if problems else 0)
