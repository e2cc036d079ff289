#!/bin/sh
# Writes the Khmer shaping references beside this script: one file per font,
# reference-noto-sans-khmer.txt and reference-khmer-os.txt, from words.txt.
#
# Each word is shaped with hb-shape (HarfBuzz) and its glyphs and clusters are recorded.
# The script refuses (exit 1, no file written) if any word shapes to .notdef (glyph 0)
# or to the dotted circle (U+25CC), which is how HarfBuzz marks a broken Khmer cluster.
# Run it once for new fonts or a new HarfBuzz, then review docs/images/khmer-sample.png
# by eye before committing the result (README.txt says how).
#
# Fonts are found by fontconfig; override with NOTO_KHMER=/path/to.ttf KHMER_OS=/path/to.ttf.
# Needs: hb-shape, fc-list, fc-query, sha256sum. Usage: sh make-reference.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
words="$here/words.txt"
# hb-shape decodes its text as UTF-8 only under a UTF-8 locale.
LC_ALL=C.UTF-8
export LC_ALL
# The options every reference line is made with; the test must use the same ones.
hb_opts="--language=km --script=khmr --direction=ltr --no-positions"

font_file() { # family -> the Regular face's file
    fc-list -f '%{file}\n' "$1:style=Regular" | head -n 1
}

package_of() { # file -> "package version", or "unknown"
    if command -v dpkg-query >/dev/null 2>&1 && pkg=$(dpkg-query -S "$1" 2>/dev/null); then
        pkg=${pkg%%:*}
        echo "$pkg $(dpkg-query -W -f '${Version}' "$pkg")"
    elif command -v pacman >/dev/null 2>&1 && pkg=$(pacman -Qqo "$1" 2>/dev/null); then
        pacman -Q "$pkg"
    else
        echo unknown
    fi
}

shape() { # font text [extra hb-shape options] -> glyph=cluster|... without the brackets
    font=$1 text=$2
    shift 2
    # shellcheck disable=SC2086 # hb_opts is a list of options
    out=$(hb-shape --font-file="$font" $hb_opts "$@" --text="$text")
    out=${out#\[}
    echo "${out%\]}"
}

reference() { # family slug
    family=$1 slug=$2
    case $slug in
        noto-sans-khmer) font=${NOTO_KHMER:-$(font_file "$family")} ;;
        *) font=${KHMER_OS:-$(font_file "$family")} ;;
    esac
    if [ -z "$font" ] || [ ! -f "$font" ]; then
        echo "make-reference.sh: font '$family' not found (fc-list)" >&2
        exit 1
    fi
    # The dotted circle's glyph in this font, by name and by id.
    dc_name=$(shape "$font" "$(printf '\342\227\214')")
    dc_name=${dc_name%%=*}
    dc_id=$(shape "$font" "$(printf '\342\227\214')" --no-glyph-names)
    dc_id=${dc_id%%=*}
    revision=$(fc-query -f '%{fontversion}' "$font")
    out="$here/reference-$slug.txt"
    tmp="$out.tmp"
    trap 'rm -f "$tmp"' EXIT
    {
        echo "# Khmer shaping reference for $family; written by make-reference.sh from words.txt, do not edit."
        echo "# Valid only for this font file and this HarfBuzz; see README.txt."
        echo "# font-family: $family"
        echo "# font-file: $font"
        echo "# font-sha256: $(sha256sum "$font" | cut -d ' ' -f 1)"
        echo "# font-revision: $(awk -v r="$revision" 'BEGIN { printf "%.3f", r / 65536 }') (head.fontRevision $revision)"
        echo "# font-package: $(package_of "$font")"
        echo "# harfbuzz: $(hb-shape --version | head -n 1)"
        echo "# hb-shape-options: $hb_opts"
        echo "# dotted-circle: $dc_name (glyph id $dc_id)"
        echo "# format: word<TAB>glyph=cluster|glyph=cluster|..., hb-shape's output without the brackets;"
        echo "#   glyphs in visual order, clusters are character (not byte) indices into the word."
    } >"$tmp"
    status=0
    while IFS="$(printf '\t')" read -r word _; do
        [ -n "$word" ] || continue
        names=$(shape "$font" "$word")
        ids=$(shape "$font" "$word" --no-glyph-names)
        # The glyph ids, one per line, looked through for 0 (.notdef) and the dotted circle.
        gids=$(echo "$ids" | tr '|' '\n' | cut -d = -f 1)
        if echo "$gids" | grep -qx 0; then
            echo "make-reference.sh: $family: '$word' has .notdef: $names" >&2
            status=1
        fi
        if echo "$gids" | grep -qx "$dc_id"; then
            echo "make-reference.sh: $family: '$word' has a dotted circle: $names" >&2
            status=1
        fi
        printf '%s\t%s\n' "$word" "$names" >>"$tmp"
    done <"$words"
    if [ "$status" != 0 ]; then
        rm -f "$tmp"
        exit 1
    fi
    mv "$tmp" "$out"
    trap - EXIT
    echo "wrote $out"
}

reference "Noto Sans Khmer" noto-sans-khmer
reference "Khmer OS" khmer-os
