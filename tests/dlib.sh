# dlib.sh - the steps the daemon test scripts share (sourced after tests/tap.sh, from the
# tree's top): the rigged models, a temp dir with socket paths, a free TCP port, bounded
# waits for a set of guardds, and a JSON field reader.

# rig_models [GENERATOR]: B (the build dir), M (its models), LG (the rigged guard) and GEN
# (the rigged generator, or $M/GENERATOR); skips the whole file, saying so, when either is
# not built
rig_models() {
	B=${BUILD:-build}
	M=$PWD/$B/models
	LG=$M/rig-l3.gguf
	GEN=$M/${1:-rig-gen-l3.gguf}
	[ -f "$LG" ] && [ -f "$GEN" ] || skip_all "test models not built (../shared absent)"
}

# need COMMAND [REASON]: skips the whole file when COMMAND is not installed
need() { command -v "$1" > /dev/null || skip_all "${2:-$1 is not installed}"; }

# mllama_ref BUILD: B, M (tiny-mllama in BUILD's models), SH (../shared) and R (its tiny-mllama
# reference); skips the whole file, saying so, without them or without jq
mllama_ref() {
	B=${1:-build}
	M=$B/models/tiny-mllama
	SH=${GUARDD_SHARED:-../shared}
	R=$SH/reference/tiny-mllama
	[ -f "$M/config.json" ] && [ -f "$R/reference.json" ] ||
	    skip_all "tiny-mllama not built (../shared absent)"
	need jq
}

# rig_tmp [MKTEMP-TEMPLATE]: a fresh temp dir T, with S (msgpack) and H (HTTP) socket paths in it
rig_tmp() {
	T=$(mktemp -d ${1:+"$1"})
	S=$T/g.sock
	H=$T/h.sock
}

# freeport: a TCP port free on 127.0.0.1 now (the caller binds it soon after)
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ping_all TRIES NAME...: waits until guardd answers ping on $T/NAME.sock for each NAME, at
# most TRIES polls of 0.1 s each; bails out with $T/NAME.err when one does not
ping_all() {
	_tries=$1
	shift
	for _n in "$@"; do
		_i=0
		until ./guard ping --socket "$T/$_n.sock" > /dev/null 2>&1; do
			_i=$((_i + 1))
			[ $_i -gt "$_tries" ] && { echo "Bail out! guardd $_n did not start: $(cat "$T/$_n.err")"; exit 1; }
			sleep 0.1
		done
	done
}

# jf FILE EXPR: EXPR (Python, the parsed JSON as j) evaluated on FILE, printed as Python does
jf() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
