// bench_llamacpp.mjs - make bench: llama.cpp's prefill and decode on a GGUF file, the same
// work as `guard bench -p P -n N -r R` (P fixed pseudo-random token ids from the same LCG,
// then N single-token decode steps, greedy; medians of R runs), so the two can be compared in
// one run on one machine. llama.cpp comes prebuilt from npm (node-llama-cpp and its
// @node-llama-cpp/linux-x64 binaries, installed by tests/bench.sh into build/bench-npm with
// downloads and builds switched off); nothing here builds or fetches anything.
//   NODE_PATH=build/bench-npm/node_modules node tests/bench_llamacpp.mjs FILE [P N R THREADS]
// Prints one JSON line: {prefill_tok_s, decode_tok_s, ...}; on failure a line
// {"error": "..."} and exit status 1.
import { readFileSync } from "fs";
import { createRequire } from "module";
import path from "path";

const [file, P = "512", N = "64", R = "3", T = "2"] = process.argv.slice(2);
if (!file) {
	console.error("usage: bench_llamacpp.mjs FILE [PROMPT GEN RUNS THREADS]");
	process.exit(2);
}
const np = +P, ng = +N, runs = +R, threads = +T;

function fail(msg) {
	console.log(JSON.stringify({ error: String(msg).split("\n")[0] }));
	process.exit(1);
}

// ES modules ignore NODE_PATH: resolve the package from the npm directory explicitly.
const npmDir = process.env.BENCH_NPM_DIR || "build/bench-npm";
let lib, version = "?";
try {
	const req = createRequire(path.resolve(npmDir, "package.json"));
	lib = await import(req.resolve("node-llama-cpp"));
	version = JSON.parse(readFileSync(path.resolve(npmDir, "node_modules/node-llama-cpp/package.json"))).version;
} catch (e) {
	fail(`node-llama-cpp not installed in ${npmDir}: ${e.message}`);
}

const median = (v) => {
	const s = [...v].sort((a, b) => a - b), n = s.length;
	return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

try {
	// build: "never": the prebuilt CPU binary or nothing (no cmake, no git, no network)
	const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: "error",
	    maxThreads: threads });
	const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
	const ctx = await model.createContext({ contextSize: np + ng + 16, batchSize: Math.min(np, 512),
	    threads: { ideal: threads, min: threads }, sequences: 1 });
	const seq = ctx.getSequence();
	const md = model.fileInfo.metadata;
	const vocab = Number(md[md.general.architecture]?.vocab_size ?? md.tokenizer?.ggml?.tokens?.length);
	if (!(vocab > 0))
		fail(`${file}: no vocabulary size in the GGUF metadata`);
	// guard bench's ids: z = z * 6364136223846793005 + 1442695040888963407 (mod 2^64), id = (z >> 33) % vocab
	let z = 12345n;
	const ids = [];
	for (let i = 0; i < np; i++) {
		z = (z * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
		ids.push(Number((z >> 33n) % BigInt(vocab)));
	}
	const pre = [], dec = [];
	for (let r = 0; r < runs; r++) {
		await seq.clearHistory();
		let t0 = performance.now();
		await seq.evaluateWithoutGeneratingNewTokens(ids);
		pre.push(np / ((performance.now() - t0) / 1e3));
		// N single-token steps, each with the next token's logits computed and a greedy token
		// sampled from them, fed ids[i % P] like guard bench. Not the evaluate() generator: on
		// this machine it took several times longer per step than controlledEvaluate does for
		// the same forward pass and greedy token, which is not llama.cpp's speed.
		t0 = performance.now();
		for (let i = 0; i < ng; i++) {
			const out = await seq.controlledEvaluate([[ids[i % np],
			    { generateNext: { token: true, options: { temperature: 0 } } }]]);
			if (out[0]?.next?.token == null)
				fail("controlledEvaluate gave no next token");
		}
		dec.push(ng / ((performance.now() - t0) / 1e3));
	}
	console.log(JSON.stringify({ engine: `llama.cpp ${llama.llamaCppRelease?.release ?? "?"} via node-llama-cpp ${version} (prebuilt)`,
	    threads: ctx.currentThreads ?? threads, flash_attention: ctx.flashAttention, prompt_tokens: np,
	    gen_tokens: ng, runs, prefill_tok_s: +median(pre).toFixed(2), decode_tok_s: +median(dec).toFixed(2) }));
	await ctx.dispose();
	await model.dispose();
	await llama.dispose();
} catch (e) {
	fail(e.message ?? e);
}
