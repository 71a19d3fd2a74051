#!/usr/bin/env bash
# Regenerate the real-Neutron dumps of the corpus: for every
# crates/ovn-openstack/tests/corpus/SEQ/steps.yml (or only the SEQs named), run run.sh and
# replace SEQ/NN-*.txt with the new normalized dumps (the raw .json stay in
# ${ORACLE_OUT:-/tmp/neutron-oracle-corpus}/SEQ).
#
#   tools/neutron-oracle/regen-corpus.sh [SEQ...]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CORPUS="$HERE/../../crates/ovn-openstack/tests/corpus"
OUT_ROOT=${ORACLE_OUT:-/tmp/neutron-oracle-corpus}
if [ $# -gt 0 ]; then seqs=("$@"); else
    seqs=(); for d in "$CORPUS"/*/steps.yml; do seqs+=("$(basename "$(dirname "$d")")"); done
fi
failed=()
for seq in "${seqs[@]}"; do
    [ -f "$CORPUS/$seq/steps.yml" ] || { echo "regen-corpus: no $CORPUS/$seq/steps.yml" >&2; exit 2; }
    echo "== $seq" >&2
    if "$HERE/run.sh" "$CORPUS/$seq/steps.yml" "$OUT_ROOT/$seq"; then
        rm -f "$CORPUS/$seq"/[0-9][0-9]-*.txt
        cp "$OUT_ROOT/$seq"/[0-9][0-9]-*.txt "$CORPUS/$seq/"
    else
        failed+=("$seq")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then echo "regen-corpus: FAILED: ${failed[*]}" >&2; exit 1; fi
echo "regen-corpus: ${#seqs[@]} sequence(s) regenerated" >&2
