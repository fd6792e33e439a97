// openai_check.mjs - drives guardd's HTTP front with the official `openai` npm SDK (4.x) and
// prints, as one JSON line, what the SDK made of each answer: its parsed objects, the chunks
// its own SSE parser yielded, or the error class it raised. tests/run/89-openai-sdk.t asserts
// on that output; this script asserts nothing itself, so a wrong answer cannot pass here.
//
// usage: GUARDD_SDK=build/sdk node openai_check.mjs BASE_URL KEY OP [ARG...]
//   models                         client.models.list()
//   mod INPUT_JSON                 client.moderations.create({input})
//   chat BODY_JSON                 client.chat.completions.create(body), not streamed
//   stream BODY_JSON               the same with stream: true, through the SDK's SSE parser
//   err ROUTE BODY_JSON [HEADER=VALUE]
//                                  a call expected to fail: the error's class and fields
// GUARDD_SDK is the --prefix the SDK was installed under (it holds node_modules/openai).
import { createRequire } from "node:module";
import path from "node:path";

const sdkDir = process.env.GUARDD_SDK;
if (!sdkDir) {
	console.error("openai_check: GUARDD_SDK (the directory holding node_modules/openai) is not set");
	process.exit(2);
}
// resolve the SDK from the test's install, not from wherever this script lives
const require = createRequire(path.join(path.resolve(sdkDir), "package.json"));
const OpenAI = require("openai");

const [base, key, op, ...args] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 120000 });

function errorInfo(e) {
	// the SDK's own classification: which subclass of APIError, and the fields it parsed
	const classes = ["BadRequestError", "AuthenticationError", "PermissionDeniedError",
		"NotFoundError", "RateLimitError", "InternalServerError", "APIConnectionError"];
	return {
		class: e.constructor.name,
		instance: classes.filter((c) => e instanceof OpenAI[c]),
		api_error: e instanceof OpenAI.APIError,
		status: e.status ?? null,
		code: e.code ?? null,
		type: e.type ?? null,
		message: e.message,
		www_authenticate: e.headers ? e.headers["www-authenticate"] ?? null : null,
	};
}

async function main() {
	switch (op) {
	case "models": {
		const ids = [];
		for await (const m of client.models.list())
			ids.push(m.id);
		return { ids };
	}
	case "mod":
		return await client.moderations.create({ input: JSON.parse(args[0]) });
	case "chat":
		return await client.chat.completions.create(JSON.parse(args[0]));
	case "stream": {
		const body = { ...JSON.parse(args[0]), stream: true };
		const stream = await client.chat.completions.create(body);
		const chunks = [];
		let text = "";
		let finish = null;
		let guardd = null;
		let usage = null;
		// the README's loop: every chunk's choices[0].delta.content, in order
		for await (const chunk of stream) {
			chunks.push(chunk);
			const c = chunk.choices[0];
			if (c) {
				text += c.delta.content ?? "";
				if (c.finish_reason)
					finish = c.finish_reason;
			}
			if (chunk.guardd)
				guardd = chunk.guardd;
			if (chunk.usage)
				usage = chunk.usage;
		}
		return { chunks, text, finish_reason: finish, guardd, usage };
	}
	case "err": {
		const [route, bodyJson, header] = args;
		const opts = {};
		if (header) {
			const i = header.indexOf("=");
			opts.headers = { [header.slice(0, i)]: header.slice(i + 1) };
		}
		const body = JSON.parse(bodyJson);
		try {
			const r = route === "mod" ? await client.moderations.create(body, opts)
			    : await client.chat.completions.create(body, opts);
			return { raised: false, answer: r };
		} catch (e) {
			return { raised: true, ...errorInfo(e) };
		}
	}
	default:
		throw new Error(`openai_check: unknown op '${op}'`);
	}
}

try {
	console.log(JSON.stringify(await main()));
} catch (e) {
	// an unexpected failure: print what the SDK raised so the test shows it, and fail
	console.log(JSON.stringify({ unexpected: errorInfo(e) }));
	process.exit(1);
}
