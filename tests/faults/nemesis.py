"""Faults done to the compose deployment for real: network partitions cut with iptables inside
each container's network namespace (entered from the host with nsenter, so the images need no
tools), kill -9 and restarts through the engine, and pauses with the cgroup freezer
(`docker pause`). Every fault can be healed, and heal() undoes all of them."""

import json
import subprocess
import time

COORDINATORS = ["coordinator-1", "coordinator-2", "coordinator-3"]
AGENTS = ["agent-1", "agent-2", "agent-3"]


def sh(*args, check=True, timeout=60):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


class Deployment:
    """The compose project's containers by service name, and the faults done to them."""

    def __init__(self, compose_file, project):
        self.compose = ["docker-compose", "-f", compose_file, "-p", project]
        self.project = project
        self.paused = set()
        self.killed = set()
        self.ids = {}

    def container(self, service):
        """The service's container id (kept: kills and restarts keep the container)."""
        if service not in self.ids:
            ids = sh(*self.compose, "ps", "-q", service).split()
            if not ids:
                raise RuntimeError(f"no container for service {service}")
            self.ids[service] = ids[0]
        return self.ids[service]

    def inspect(self, service):
        return json.loads(sh("docker", "inspect", self.container(service)))[0]

    def ip(self, service):
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        return next(iter(networks.values()))["IPAddress"]

    def pid(self, service):
        return self.inspect(service)["State"]["Pid"]

    def running(self, service):
        return self.inspect(service)["State"]["Running"]

    def iptables(self, service, *rule):
        sh("nsenter", "-t", str(self.pid(service)), "-n", "iptables", "-w", *rule)

    def cut(self, a, b):
        """No packet between services a and b, either way (rules on both sides)."""
        ip_a, ip_b = self.ip(a), self.ip(b)
        for here, there in ((a, ip_b), (b, ip_a)):
            self.iptables(here, "-A", "INPUT", "-s", there, "-j", "DROP")
            self.iptables(here, "-A", "OUTPUT", "-d", there, "-j", "DROP")

    def partition(self, *groups):
        """Services in different groups cannot reach each other."""
        for i, left in enumerate(groups):
            for right in groups[i + 1:]:
                for a in left:
                    for b in right:
                        self.cut(a, b)

    def kill(self, service):
        sh("docker", "kill", "-s", "KILL", self.container(service))
        self.killed.add(service)

    def pause(self, service):
        sh("docker", "pause", self.container(service))
        self.paused.add(service)

    def unpause(self, service):
        sh("docker", "unpause", self.container(service))
        self.paused.discard(service)

    def restart(self, services):
        sh("docker", "restart", "-t", "5", *[self.container(s) for s in services], timeout=120)

    def wipe_and_rejoin(self, service, override):
        """The service's data directory lost: stopped, its volume emptied, started again as a
        node that joins (the override sets PATCHFARM_JOIN) — a new container."""
        info = self.inspect(service)
        volume = next(m["Name"] for m in info["Mounts"] if m["Destination"] == "/var/lib/patchfarm")
        sh("docker", "stop", "-t", "5", self.container(service))
        sh("docker", "run", "--rm", "--user", "0", "-v", f"{volume}:/d", "--entrypoint", "/bin/sh",
           info["Config"]["Image"], "-c", "rm -rf /d/* && chown -R 10001:10001 /d")
        sh(*self.compose, "-f", override, "up", "-d", "--no-deps", service, timeout=120)
        self.ids.pop(service, None)

    def heal(self):
        """Every partition lifted, every paused container resumed, every killed one started."""
        for service in list(self.paused):
            self.unpause(service)
        for service in list(self.killed):
            sh("docker", "start", self.container(service))
            self.killed.discard(service)
        for service in COORDINATORS + AGENTS + ["registry"]:
            if self.running(service):
                self.iptables(service, "-F", "INPUT")
                self.iptables(service, "-F", "OUTPUT")

    def logs(self, service, since):
        done = subprocess.run(
            ["docker", "logs", "--since", since, self.container(service)],
            capture_output=True, text=True, timeout=60,
        )
        return done.stdout + done.stderr

    def wait_running(self, services, deadline=30):
        until = time.monotonic() + deadline
        while not all(self.running(s) for s in services):
            if time.monotonic() > until:
                raise RuntimeError(f"not running after {deadline} s: {services}")
            time.sleep(0.2)
