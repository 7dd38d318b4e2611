"""org.osbuild.keymap: console keymap (/etc/vconsole.conf), X11 layouts, and Debian's /etc/default/keyboard."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    o = args.options
    lines = [f"KEYMAP={o['keymap']}"] + ([f"FONT={o['font']}"] if "font" in o else [])
    with open(args.tree_path("/etc/vconsole.conf"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    layouts = o.get("x11-keymap", {}).get("layouts") or [o["keymap"].split("-")[0]]
    if "x11-keymap" in o:
        conf = args.tree_path("/etc/X11/xorg.conf.d/00-keyboard.conf")
        os.makedirs(os.path.dirname(conf), exist_ok=True)
        with open(conf, "w", encoding="utf-8") as f:
            f.write('Section "InputClass"\n        Identifier "system-keyboard"\n        MatchIsKeyboard "on"\n'
                    f'        Option "XkbLayout" "{",".join(layouts)}"\nEndSection\n')
    if os.path.isdir(args.tree_path("/etc/default")):
        with open(args.tree_path("/etc/default/keyboard"), "w", encoding="utf-8") as f:
            f.write(f'XKBMODEL="pc105"\nXKBLAYOUT="{",".join(layouts)}"\nXKBVARIANT=""\nXKBOPTIONS=""\nBACKSPACE="guess"\n')
    print("\n".join(lines))
    return 0
