"""org.osbuild.keymap: console keymap (/etc/vconsole.conf), X11 layouts, and Debian's /etc/default/keyboard."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    o = args.options
    lines = [f"KEYMAP={o['keymap']}"] + ([f"FONT={o['font']}"] if "font" in o else [])
    root = args.tree_root()  # openat2 in the tree
    root.write_text("/etc/vconsole.conf", "\n".join(lines) + "\n")
    layouts = o.get("x11-keymap", {}).get("layouts") or [o["keymap"].split("-")[0]]
    if "x11-keymap" in o:
        root.makedirs("/etc/X11/xorg.conf.d")
        root.write_text("/etc/X11/xorg.conf.d/00-keyboard.conf",
                        'Section "InputClass"\n        Identifier "system-keyboard"\n        MatchIsKeyboard "on"\n'
                        f'        Option "XkbLayout" "{",".join(layouts)}"\nEndSection\n')
    if os.path.isdir(args.tree_path("/etc/default")):
        root.write_text("/etc/default/keyboard", f'XKBMODEL="pc105"\nXKBLAYOUT="{",".join(layouts)}"\nXKBVARIANT=""\nXKBOPTIONS=""\nBACKSPACE="guess"\n')
    print("\n".join(lines))
    return 0
