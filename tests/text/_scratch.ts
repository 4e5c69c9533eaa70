import { loadTokenizer } from "/work/main/src/text/tokenizer.ts";
const s = await loadTokenizer("/work/shared/fixtures/stories260k");
console.log(s.bosId, s.eosIds, s.padId, s.vocabSize, [...s.specialIds]);
const ref = JSON.parse(await Deno.readTextFile("/work/shared/fixtures/stories260k/reference_outputs.json"));
for (const [t, ids] of Object.entries(ref.tokenizer_cases)) { const e = s.encode(t); console.log(JSON.stringify(e) === JSON.stringify(ids), JSON.stringify(s.decode(e, {skipSpecialTokens:true})), JSON.stringify(s.decode(e))); }
console.log(JSON.stringify(s.decode(ref.greedy_no_prompt.output_ids, {skipSpecialTokens: true})) === JSON.stringify(ref.greedy_no_prompt.text));
const q = await loadTokenizer("/work/shared/fixtures/qwen2.5-tokenizer");
console.log(q.bosId, q.eosIds, q.padId, q.vocabSize, q.specialIds.size);
const qr = JSON.parse(await Deno.readTextFile("/work/shared/fixtures/qwen2.5-tokenizer/reference_encodings.json"));
for (const [t, ids] of Object.entries({...qr.cases, ...qr.known_external_values})) { const e = q.encode(t, {addSpecialTokens:false}); console.log(JSON.stringify(e) === JSON.stringify(ids), q.decode(e) === t); }
console.log(q.encode("<answer>", {addSpecialTokens:false}));
