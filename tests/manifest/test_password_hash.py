"""Blueprint passwords in manifests are hashed with passlib (libpass), never the crypt module
(gone in Python 3.13)."""

from __future__ import annotations

import random
import subprocess
import sys

from passlib.hash import sha512_crypt

from osbuildd.manifest.customizations import users_stage


def test_plain_password_hashed_deterministically():
    c = {"user": [{"name": "alice", "password": "hunter2"}, {"name": "bob", "password": "$6$salt$already"}]}
    a = users_stage(c, random.Random(7))["options"]["users"]
    b = users_stage(c, random.Random(7))["options"]["users"]
    h = a["alice"]["password"]
    assert h.startswith("$6$") and "rounds=" not in h   # SHA-512 crypt, upstream's implicit 5000 rounds
    assert sha512_crypt.verify("hunter2", h) and not sha512_crypt.verify("hunter3", h)
    assert a == b                                        # same seed, same bytes
    assert users_stage(c, random.Random(8))["options"]["users"]["alice"]["password"] != h
    assert a["bob"]["password"] == "$6$salt$already"     # an already crypted one is kept


def test_works_without_the_crypt_module():
    # as on Python 3.13: importing crypt fails
    code = ("import sys, random; sys.modules['crypt'] = None\n"
            "from osbuildd.manifest.customizations import users_stage\n"
            "u = users_stage({'user': [{'name': 'a', 'password': 'pw'}]}, random.Random(1))\n"
            "print(u['options']['users']['a']['password'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert sha512_crypt.verify("pw", out)
