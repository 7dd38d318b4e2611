"""Blueprints the Debian tests build: one with every customization Debian supports."""

from __future__ import annotations

from typing import Any

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH3test0nly0key0for0osbuildd0h3tests0000000 alice@h3"

FULL: dict[str, Any] = {
    "name": "h3-full",
    "version": "0.0.1",
    "packages": [{"name": "tmux", "version": "3.3*"}, {"name": "sudo", "version": "*"}],
    "customizations": {
        "hostname": "h3-host",
        "kernel": {"append": "h3.marker=1"},
        "user": [{"name": "alice", "description": "Alice H3", "key": SSH_KEY, "groups": ["sudo", "devs"],
                  "uid": 1234, "shell": "/bin/bash", "home": "/home/alice"}],
        "group": [{"name": "devs", "gid": 2345}],
        "timezone": {"timezone": "Europe/Berlin"},
        "locale": {"languages": ["en_US.UTF-8"]},
        "services": {"enabled": ["systemd-networkd"], "disabled": ["e2scrub_reap"]},
        "filesystem": [{"mountpoint": "/", "minsize": "3 GiB"}],
        "directories": [{"path": "/etc/h3test", "mode": "0750"}],
        "files": [{"path": "/etc/h3test/hello.txt", "data": "hello from h3\n", "mode": "0640"}],
    },
}

SMALL: dict[str, Any] = {
    "name": "h3-small",
    "version": "0.0.1",
    "packages": [{"name": "less", "version": "*"}],
    "customizations": {"hostname": "h3-tar", "timezone": {"timezone": "Europe/Berlin"}},
}
