#!/bin/sh
# Renders docs/images/khmer-sample.png with Pango: each word of words.txt in Noto Sans Khmer,
# then in Khmer OS, then its English gloss. The picture is what the shaping references were
# reviewed against by eye (README.txt).
# Needs: pango-view, fc-match. Usage: sh make-sample.sh [output.png]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../../../../docs/images/khmer-sample.png"}
LC_ALL=C.UTF-8
export LC_ALL

# A missing font would silently fall back to another one; refuse instead.
for family in "Noto Sans Khmer" "Khmer OS" "DejaVu Sans"; do
    if [ "$(fc-match -f '%{family[0]}' "$family")" != "$family" ]; then
        echo "make-sample.sh: font '$family' is not installed" >&2
        exit 1
    fi
done

markup=$(mktemp)
trap 'rm -f "$markup"' EXIT
{
    printf '<span font="DejaVu Sans Bold 13">%s</span>\n' \
        "Khmer shaping sample: Noto Sans Khmer, Khmer OS, English (crates/koompi-testutil/data/khmer)"
    while IFS="$(printf '\t')" read -r word gloss _; do
        [ -n "$word" ] || continue
        gloss=$(printf '%s' "$gloss" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
        printf '<span font="Noto Sans Khmer 30">%s</span>     ' "$word"
        printf '<span font="Khmer OS 30">%s</span>     ' "$word"
        printf '<span font="DejaVu Sans 14" foreground="#444444">%s</span>\n' "$gloss"
    done <"$here/words.txt"
} >"$markup"

pango-view --no-display --markup --pixels --width=780 --margin=10 \
    --background=white --foreground=black --hinting=slight \
    --output="$out" "$markup"
echo "wrote $out"
