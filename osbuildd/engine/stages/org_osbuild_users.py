"""org.osbuild.users: add or modify users in the tree (useradd/usermod --root), with SSH keys."""

from __future__ import annotations

import os
import subprocess
import sys

from osbuildd.engine.stageapi import StageArgs, run


def passwd_entry(tree: str, name: str) -> list[str] | None:
    try:
        with open(os.path.join(tree, "etc/passwd"), encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
    except FileNotFoundError:
        pass
    return None


def main(args: StageArgs) -> int:
    tree = args.tree
    for name, d in args.options.get("users", {}).items():
        exists = passwd_entry(tree, name) is not None
        cmd = ["usermod" if exists else "useradd", "--root", tree]
        if "uid" in d:
            cmd += ["-u", str(int(d["uid"]))]
        if "gid" in d:
            cmd += ["-g", str(int(d["gid"]))]
        if d.get("groups"):
            cmd += ["-G", ",".join(d["groups"])] + (["-a"] if exists else [])
        if "home" in d:
            cmd += ["-d", d["home"]] + (["-m"] if exists else [])
        if "shell" in d:
            cmd += ["-s", d["shell"]]
        if "password" in d:
            cmd += ["-p", d["password"]]
        if "expiredate" in d:
            cmd += ["-e", str(d["expiredate"])]
        if not exists:
            cmd += ["-m", "-U"] if "gid" not in d else ["-m"]
        print(f"{'modifying' if exists else 'adding'} user {name}")
        # not `run`: the command line carries the password hash, which must not reach the log
        subprocess.run(cmd + [name], check=True, stdout=sys.stdout, stderr=sys.stderr)
        if d.get("force_password_reset"):
            run(["chage", "--root", tree, "-d", "0", name])
        keys = list(d.get("keys", [])) + ([d["key"]] if "key" in d else [])
        if keys:
            entry = passwd_entry(tree, name)
            assert entry is not None
            uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
            ssh = os.path.join(tree, home.lstrip("/"), ".ssh")
            os.makedirs(ssh, mode=0o700, exist_ok=True)
            auth = os.path.join(ssh, "authorized_keys")
            with open(auth, "w", encoding="utf-8") as f:
                f.write("\n".join(keys) + "\n")
            os.chmod(auth, 0o600)
            for p in (ssh, auth):
                os.chown(p, uid, gid)
    return 0
