"""org.osbuild.users: add or modify users in the tree (useradd/usermod --root), with SSH keys."""

from __future__ import annotations

import os
import subprocess
import sys

from osbuildd.engine.stageapi import StageArgs, TreeRoot, run


def passwd_entry(tree: str, name: str) -> list[str] | None:
    try:
        text = TreeRoot(tree).read_text("/etc/passwd")  # inside the tree, whatever it links to
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
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
        if "description" in d:   # the GECOS field, as upstream's stage passes it
            cmd += ["-c", d["description"]]
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
            # the home comes from the manifest (and useradd): a symlink in it resolves in the tree
            root = TreeRoot(tree)
            ssh = os.path.join("/", home.lstrip("/"), ".ssh")
            root.makedirs(ssh, mode=0o700)
            auth = ssh + "/authorized_keys"
            root.write_text(auth, "\n".join(keys) + "\n", mode=0o600)
            root.chmod(auth, 0o600)
            for p in (ssh, auth):
                root.chown(p, uid, gid, follow=False)
    return 0
