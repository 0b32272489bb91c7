// Greedy generation of 128 tokens with node-llama-cpp 3.21.1 (the same
// llama.cpp build the Go bindings pin) on the model BenchmarkGenerate and
// bench/cmd/viadaemon use. Prints, as JSON, per-run tokens/s (tokens after
// the first over the time from first to last token) and time to first token
// (from tokenizing the prompt to the first token), and their means.
//
//   go -C bench run ./cmd/writemodel /tmp/bench.gguf
//   (cd bench/node-llama && npm install --ignore-scripts && node bench.mjs /tmp/bench.gguf)
import {getLlama} from "node-llama-cpp";

const modelPath = process.argv[2];
const threads = Number(process.env.THREADS ?? 1);
const runs = Number(process.env.RUNS ?? 20);
const maxTokens = Number(process.env.MAX_TOKENS ?? 128);
const prompt = "the quick brown fox jumps over the lazy dog";
if (!modelPath) {
    console.error("usage: node bench.mjs MODEL.gguf");
    process.exit(2);
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({contextSize: 1024, batchSize: 512, threads});
const sequence = context.getSequence();

// One generation: the same steps as the daemon's (clear the KV cache,
// tokenize with BOS, decode the prompt, sample greedily token by token).
async function once(limit) {
    await sequence.clearHistory();
    const start = performance.now();
    // model.tokenize adds no BOS; llama_tokenize(add_special) in Go does.
    const tokens = [model.tokens.bos, ...model.tokenize(prompt)];
    let first = 0, last = 0, n = 0;
    const ids = [];
    for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
        const now = performance.now();
        if (n === 0) first = now;
        last = now;
        if (model.isEogToken(token)) break;
        if (ids.length < 8) ids.push(token);
        if (++n >= limit) break;
    }
    return {tps: n > 1 ? (n - 1) / ((last - first) / 1000) : 0, ttft: first - start, ids, n};
}

// Warm-up, as the daemon side warms its contexts up.
await once(8);
const tpsRuns = [], ttftRuns = [];
let firstIds = [];
// CPU time of the whole process (JS thread and llama.cpp's), as the Go side
// reports its own: hardly moved by the machine's load, unlike the rates.
const cpu0 = process.cpuUsage();
for (let r = 0; r < runs; r++) {
    const o = await once(maxTokens);
    if (o.n !== maxTokens) throw new Error(`run ${r}: ${o.n} tokens, want ${maxTokens}`);
    tpsRuns.push(o.tps);
    ttftRuns.push(o.ttft);
    if (r === 0) firstIds = o.ids;
}
const cpu = process.cpuUsage(cpu0);
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
console.log(JSON.stringify({
    engine: "node-llama-cpp 3.21.1", threads, runs, maxTokens,
    tokensPerSec: mean(tpsRuns), ttftMs: mean(ttftRuns),
    tokensPerSecRuns: tpsRuns, ttftMsRuns: ttftRuns, firstIds,
    cpuMsPerToken: (cpu.user + cpu.system) / 1000 / (runs * maxTokens),
}));
await context.dispose();
await model.dispose();
await llama.dispose();
