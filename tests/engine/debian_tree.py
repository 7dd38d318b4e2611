"""A manifest that customizes a Debian 12 tree with the generic stages, run inside a Debian build root."""

from __future__ import annotations

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOsbuilddTestKeyOnlyForTestsXXXXXXXXXXXXXXXXX test@osbuildd"
# SHA-512 crypt of "osbuildd" (a test value, not a secret)
PASSWORD_HASH = "$6$rounds=5000$saltsalt$5xL0Ldp7Cd7W8y.XcA0JrzPz7R0tkCsPKNm8a.4mFgqDJxMbd26HxLJrPfR3r.8nkUlDTD2vhvFTgOqXA0Sxy."


def manifest(checksum: str, url: str) -> dict:
    untar = {"type": "org.osbuild.untar", "inputs": {"file": {"type": "org.osbuild.files",
             "origin": "org.osbuild.source", "references": [checksum]}}}
    stages = [
        untar,
        {"type": "org.osbuild.hostname", "options": {"hostname": "deb-custom"}},
        {"type": "org.osbuild.timezone", "options": {"zone": "Europe/Berlin"}},
        {"type": "org.osbuild.locale", "options": {"language": "en_US.UTF-8"}},
        {"type": "org.osbuild.keymap", "options": {"keymap": "de"}},
        {"type": "org.osbuild.groups", "options": {"groups": {"builders": {"gid": 2000}}}},
        {"type": "org.osbuild.users", "options": {"users": {
            "alice": {"uid": 1500, "groups": ["builders", "sudo"], "shell": "/bin/bash", "key": SSH_KEY,
                      "password": PASSWORD_HASH},
            "root": {"shell": "/bin/sh"}}}},
        {"type": "org.osbuild.fstab", "options": {"filesystems": [
            {"uuid": "0194fdc2-fa2f-4cc0-81d3-ff12045b73c8", "vfs_type": "ext4", "path": "/", "options": "defaults",
             "freq": 1, "passno": 1}]}},
        {"type": "org.osbuild.systemd", "options": {"enabled_services": ["ssh.service", "systemd-networkd.service"],
                                                    "disabled_services": ["chrony.service"],
                                                    "default_target": "multi-user.target"}},
        {"type": "org.osbuild.machine-id", "options": {"first-boot": "yes"}},
        {"type": "org.osbuild.chrony", "options": {"timeservers": ["time.example.org"]}},
        {"type": "org.osbuild.sshd.config", "options": {"config": {"PasswordAuthentication": False,
                                                                   "PermitRootLogin": "prohibit-password"}}},
        {"type": "org.osbuild.cloud-init", "options": {"filename": "99-osbuildd.cfg",
                                                       "config": {"ssh_pwauth": False}}},
        {"type": "org.osbuild.tmpfilesd", "options": {"filename": "osbuildd.conf",
                                                      "config": [{"type": "d", "path": "/var/lib/osbuildd-demo",
                                                                  "mode": "0755"}]}},
        {"type": "org.osbuild.mkdir", "options": {"paths": [{"path": "/srv/data", "mode": 0o750}]}},
        {"type": "org.osbuild.chown", "options": {"items": {"/srv/data": {"user": "alice", "group": "builders"}}}},
        {"type": "org.osbuild.chmod", "options": {"items": {"/srv/data": {"mode": "g+s"}}}},
        {"type": "org.osbuild.systemd.unit.create", "options": {"filename": "demo.service", "unit-path": "etc",
            "config": {"Unit": {"Description": "demo"}, "Service": {"Type": "oneshot", "ExecStart": ["/bin/true"]},
                       "Install": {"WantedBy": ["multi-user.target"]}}}},
    ]
    return {"version": "2",
            "sources": {"org.osbuild.curl": {"items": {checksum: url}}},
            "pipelines": [
                {"name": "build", "stages": [untar]},
                {"name": "os", "build": "name:build", "source-epoch": 1700000000, "stages": stages},
                {"name": "archive", "build": "name:build", "stages": [{"type": "org.osbuild.tar",
                    "inputs": {"tree": {"type": "org.osbuild.tree", "origin": "org.osbuild.pipeline",
                                        "references": ["name:os"]}},
                    "options": {"filename": "os.tar.gz", "compression": "gzip"}}]}]}
