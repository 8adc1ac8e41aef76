#!/usr/bin/env bash
# The repository stands alone: its documentation and comments cite only what is in it.
#
# 1. No reference to design or experiment notes kept outside the repository, to a sibling
#    folder, or to what an issue said when it was closed: the facts belong in docs/. The
#    patterns are bracket expressions, so that this file does not match them itself.
# 2. Every relative Markdown link in README.md and docs/*.md names a file that exists, and an
#    anchor into a Markdown file names one of its headings (GitHub's heading anchors).
#
# Usage: docs_stand_alone.sh SOURCE_DIR. Exit 0 when both hold, 1 otherwise (and says what).
set -u
root="${1:?usage: docs_stand_alone.sh SOURCE_DIR}"
cd "$root" || exit 1
status=0

pattern='[.][.]/shared|DESIGN[.]md|EXPERIMENTS[.]md|closing[ ]note'
dirs=(README.md docs include src apps tests bench examples scripts fuzz)
if hits=$(grep -rnE "$pattern" "${dirs[@]}"); then
  echo "References outside the repository (put the facts in docs/ and point there):"
  echo "$hits"
  status=1
fi

# GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
anchors_of() {
  grep -E '^#{1,6} ' "$1" | sed -E 's/^#+ +//' | tr 'A-Z' 'a-z' |
    sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}

for md in README.md docs/*.md; do
  dir=$(dirname "$md")
  while IFS= read -r link; do
    target="${link%%#*}"
    anchor=""
    [[ "$link" == *"#"* ]] && anchor="${link#*#}"
    case "$target" in
      http:* | https:* | mailto:*) continue ;;
    esac
    if [[ -z "$target" ]]; then
      file="$md"
    else
      file="$dir/$target"
    fi
    if [[ ! -e "$file" ]]; then
      echo "$md: broken link ($link): no file $file"
      status=1
      continue
    fi
    if [[ -n "$anchor" && "$file" == *.md ]] && ! anchors_of "$file" | grep -qxF "$anchor"; then
      echo "$md: broken link ($link): no heading with anchor #$anchor in $file"
      status=1
    fi
  done < <(grep -oE '\]\([^) ]+\)' "$md" | sed -E 's/^\]\(//; s/\)$//')
done

if [[ $status -eq 0 ]]; then
  echo "docs stand alone: no outside references; every relative link resolves"
fi
exit $status
