// Greedy generation of 128 tokens with node-llama-cpp 3.21.1 (the same
// llama.cpp build the Go bindings pin) on the model BenchmarkGenerate uses.
// Prints tokens/s (tokens after the first / time from first to last token)
// and time to first token, averaged over RUNS runs, as JSON.
//
//   go run ./llama/bench/writemodel /tmp/bench.gguf
//   (cd llama/bench/node && npm install --ignore-scripts && node bench.mjs /tmp/bench.gguf)
import {getLlama} from "node-llama-cpp";

const modelPath = process.argv[2];
const threads = Number(process.env.THREADS ?? 1);
const runs = Number(process.env.RUNS ?? 20);
const maxTokens = 128;
const prompt = "the quick brown fox jumps over the lazy dog";
if (!modelPath) {
    console.error("usage: node bench.mjs MODEL.gguf");
    process.exit(2);
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({contextSize: 1024, batchSize: 512, threads});
const sequence = context.getSequence();

let tpsSum = 0, ttftSum = 0, firstIds = [];
for (let r = 0; r < runs; r++) {
    await sequence.clearHistory();
    const start = performance.now();
    // model.tokenize adds no BOS; llama_tokenize(add_special) in Go does.
    const tokens = [model.tokens.bos, ...model.tokenize(prompt)];
    let first = 0, last = 0, n = 0;
    for await (const token of sequence.evaluate(tokens, {temperature: 0})) {
        const now = performance.now();
        if (n === 0) first = now;
        last = now;
        if (model.isEogToken(token)) break;
        if (r === 0 && firstIds.length < 8) firstIds.push(token);
        if (++n >= maxTokens) break;
    }
    tpsSum += n > 1 ? (n - 1) / ((last - first) / 1000) : 0;
    ttftSum += first - start;
}
console.log(JSON.stringify({
    engine: "node-llama-cpp 3.21.1", threads, runs, maxTokens,
    tokensPerSec: tpsSum / runs, ttftMs: ttftSum / runs, firstIds,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
