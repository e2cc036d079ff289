#!/usr/bin/env python3
"""Draws KOOMPI's artwork: the Plymouth theme's images, the wallpapers and the boot menu splash.

A developer tool, not part of the OS (no Python in the core OS): the PNGs it writes are committed,
and the koompi-branding package installs those. Run it from anywhere after changing a colour (in
configs/palette.toml, which it reads) or a size:

    python3 branding/generate-artwork.py

The logo is the motd's banner itself: every block character (U+2588) of its first six lines
becomes a filled cell and every box-drawing character its double-line shadow, so the boot splash,
the wallpapers and the login banner show the same letters. Pure standard library (zlib, struct,
tomllib: Python 3.11 or later), deterministic output.
"""

import struct
import tomllib
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent



def palette():
    """KOOMPI's colours from configs/palette.toml, the file every KOOMPI config takes them from."""
    data = tomllib.loads((HERE.parent / "configs" / "palette.toml").read_text(encoding="utf-8"))

    def rgb(table, name):
        value = data[table][name]
        return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))

    return {
        "navy_top": rgb("wallpaper", "navy-top"),
        "navy_bottom": rgb("wallpaper", "navy-bottom"),
        "blue_top": rgb("wallpaper", "blue-top"),
        "white": rgb("wallpaper", "logo"),
        "blue": rgb("colors", "accent"),
        "sky": rgb("colors", "accent-light"),
    }


# KOOMPI colours (RGB).
_P = palette()
NAVY_TOP = _P["navy_top"]
NAVY_BOTTOM = _P["navy_bottom"]
BLUE_TOP = _P["blue_top"]
BLUE = _P["blue"]
SKY = _P["sky"]
WHITE = _P["white"]


def png(path, width, height, rows, alpha):
    """Writes rows (lists of (r, g, b[, a]) tuples) as an 8-bit RGB or RGBA PNG."""
    channels = 4 if alpha else 3
    raw = bytearray()
    for row in rows:
        # Filter type 1 (Sub): flat areas and horizontal runs compress to almost nothing.
        raw.append(1)
        prev = (0,) * channels
        for px in row:
            px = tuple(px[:channels]) if len(px) >= channels else tuple(px) + (255,)
            raw.extend((c - p) & 0xFF for c, p in zip(px, prev))
            prev = px

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    color_type = 6 if alpha else 2
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{path.relative_to(HERE.parent)}: {width}x{height}, {len(data)} bytes")


def banner():
    """The six banner lines of the motd (branding/motd)."""
    lines = (HERE / "motd").read_text(encoding="utf-8").split("\n")[:6]
    width = max(len(line) for line in lines)
    return [line.ljust(width) for line in lines]


# Which sides of the cell a box-drawing character's double line reaches.
BOX = {"═": "lr", "║": "ud", "╔": "rd", "╗": "ld", "╚": "ru", "╝": "lu"}


def logo_mask(cell_w, cell_h):
    """Coverage of the banner: 2 = block, 1 = shadow line, 0 = empty; a list of rows."""
    lines = banner()
    # Drop the two leading spaces of the motd so the logo is centred on its letters.
    lines = [line[2:] for line in lines]
    cols = max(len(line) for line in lines)
    w, h = cols * cell_w, len(lines) * cell_h
    mask = [[0] * w for _ in range(h)]
    t = max(1, cell_w // 8)  # line thickness
    gap = max(2, cell_w // 4)  # distance of each of the double lines from the centre
    for r, line in enumerate(lines):
        for c, ch in enumerate(line):
            x0, y0 = c * cell_w, r * cell_h
            if ch == "█":
                for y in range(y0, y0 + cell_h):
                    for x in range(x0, x0 + cell_w):
                        mask[y][x] = 2
            elif ch in BOX:
                sides = BOX[ch]
                cx, cy = x0 + cell_w // 2, y0 + cell_h // 2
                for off in (-gap, gap):
                    # horizontal strokes at cy+off, vertical strokes at cx+off
                    if "l" in sides or "r" in sides:
                        xa = x0 if "l" in sides else cx - gap
                        xb = x0 + cell_w if "r" in sides else cx + gap + t
                        for y in range(cy + off, cy + off + t):
                            for x in range(xa, xb):
                                if mask[y][x] == 0:
                                    mask[y][x] = 1
                    if "u" in sides or "d" in sides:
                        ya = y0 if "u" in sides else cy - gap
                        yb = y0 + cell_h if "d" in sides else cy + gap + t
                        for y in range(ya, yb):
                            for x in range(cx + off, cx + off + t):
                                if mask[y][x] == 0:
                                    mask[y][x] = 1
    return mask


def mix(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def gradient_rows(width, height, top, bottom):
    for y in range(height):
        color = mix(top, bottom, y / max(1, height - 1))
        yield [color] * width


def with_logo(width, height, top, bottom, cell_w, cell_h, dy=0):
    """A vertical gradient with the banner in the middle (RGB rows)."""
    mask = logo_mask(cell_w, cell_h)
    lh, lw = len(mask), len(mask[0])
    ox, oy = (width - lw) // 2, (height - lh) // 2 + dy
    rows = []
    for y, row in enumerate(gradient_rows(width, height, top, bottom)):
        my = y - oy
        if 0 <= my < lh:
            row = list(row)
            for mx, v in enumerate(mask[my]):
                if v == 2:
                    row[ox + mx] = WHITE
                elif v == 1:
                    row[ox + mx] = BLUE
        rows.append(row)
    return rows


def rounded_bar(width, height, color, alpha):
    """An RGBA bar with round ends."""
    r = height / 2
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            cx = min(max(x + 0.5, r), width - r)
            d = ((x + 0.5 - cx) ** 2 + (y + 0.5 - r) ** 2) ** 0.5
            cover = max(0.0, min(1.0, r - d + 0.5))
            row.append(color + (round(alpha * cover),))
        rows.append(row)
    return rows


def main():
    theme = HERE / "plymouth" / "koompi"

    # Plymouth logo: white letters, blue shadow lines, transparent background.
    mask = logo_mask(8, 16)
    rows = [
        [WHITE + (255,) if v == 2 else BLUE + (255,) if v == 1 else (0, 0, 0, 0) for v in row]
        for row in mask
    ]
    png(theme / "logo.png", len(mask[0]), len(mask), rows, alpha=True)

    # Progress bar: a faint track and the blue bar the script stretches over it.
    png(theme / "progress_box.png", 320, 8, rounded_bar(320, 8, WHITE, 48), alpha=True)
    png(theme / "progress_bar.png", 320, 8, rounded_bar(320, 8, SKY, 255), alpha=True)

    # Password prompt (an encrypted installed system): the entry field and one bullet.
    png(theme / "entry.png", 320, 36, rounded_bar(320, 36, WHITE, 40), alpha=True)
    png(theme / "bullet.png", 12, 12, rounded_bar(12, 12, WHITE, 255), alpha=True)

    # Wallpapers, 1920x1080.
    wall = HERE / "wallpapers"
    png(wall / "koompi-default.png", 1920, 1080,
        with_logo(1920, 1080, NAVY_TOP, NAVY_BOTTOM, 16, 32), alpha=False)
    png(wall / "koompi-blue.png", 1920, 1080,
        with_logo(1920, 1080, BLUE_TOP, NAVY_TOP, 16, 32), alpha=False)

    # Boot menu background (syslinux vesamenu draws on 640x480); the menu sits below the logo.
    profile = HERE.parent / "iso" / "syslinux"
    png(profile / "splash.png", 640, 480,
        with_logo(640, 480, NAVY_TOP, NAVY_BOTTOM, 6, 12, dy=-170), alpha=False)


if __name__ == "__main__":
    main()
