#!/bin/sh
# guard bench on a quantized file (for 22-quant.t): it names the mix of types and what runs
# them, and reports the decode rate in GB/s of weights. Prints TAP.
#   qbench.sh GUARD FILE "EXPECTED WEIGHT TYPE"
[ -f "$2" ] || { echo "1..0 # SKIP $2 is absent"; exit 0; }
js=$("$1" bench -m "$2" -p 8 -n 2 -r 1 --json) || { echo "not ok 1 - guard bench exited $?"; echo 1..1; exit 1; }
echo "$js" | WANT="$3" python3 -c '
import json, os, sys
d = json.load(sys.stdin)
good = d["weight_type"] == os.environ["WANT"] and d["decode_gb_s"] > 0 and \
    d["quant_kernel"] in ("int8 SIMD", "portable C")
print("%sok 1 - guard bench: weight type %s, decode %.3g GB/s, quantized matrices run by %s" %
      ("" if good else "not ", d["weight_type"], d["decode_gb_s"], d["quant_kernel"]))
print("1..1")'
