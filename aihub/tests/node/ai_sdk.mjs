// The Vercel AI SDK's default OpenAI provider, `openai(id)` (the Responses API since AI SDK 5), against
// City as a developer points it there: only OPENAI_BASE_URL and OPENAI_API_KEY set, nothing else.
// For each model in CITY_MODELS (comma-separated): `generateText`, then `streamText` with a tool the
// SDK runs itself (two steps: the model calls the tool, then answers its result).
// Prints one JSON object on stdout: `results` (model → what came back) and `answers` (City's answers and
// stream events as sent); aihub/tests/test_clients.py asserts them.
// Any error ends the process with a non-zero status and the error on stderr.
import { openai } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const FORECAST = 'sunny, 21 °C';

// What City answered, as it came over the wire, for the Python test to validate against OpenAI's
// schema: the SDK reads its answers through the global fetch, so a copy is taken there.
const answers = { responses: [], events: [] };
const copies = [];
const fetchOfNode = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  const response = await fetchOfNode(url, init);
  if (!String(url).endsWith('/responses') || !response.ok) return response;
  if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    copies.push(response.clone().json().then((body) => answers.responses.push(body)));
    return response;
  }
  const [copy, theirs] = response.body.tee();
  copies.push(
    new Response(copy).text().then((text) => {
      for (const line of text.split('\n')) if (line.startsWith('data: ')) answers.events.push(JSON.parse(line.slice(6)));
    }),
  );
  return new Response(theirs, { status: response.status, statusText: response.statusText, headers: response.headers });
};

const getWeather = tool({
  description: 'Weather of a city.',
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, forecast: FORECAST }),
});

async function generate(model) {
  const result = await generateText({ model: openai(model), prompt: 'Say hello.', maxOutputTokens: 50, maxRetries: 0 });
  return {
    text: result.text,
    finishReason: result.finishReason,
    usage: { input: result.usage.inputTokens, output: result.usage.outputTokens },
    responseId: result.response.id,
    modelId: result.response.modelId,
  };
}

async function streamWithATool(model, providerOptions = {}) {
  const result = streamText({
    model: openai(model),
    prompt: 'What is the weather in Paris?',
    tools: { get_weather: getWeather },
    stopWhen: stepCountIs(3), // room for a third step, so that a loop that never ends shows as one
    maxRetries: 0,
    providerOptions,
  });
  const deltas = [];
  const partTypes = new Set();
  for await (const part of result.fullStream) {
    partTypes.add(part.type);
    if (part.type === 'error') throw part.error;
    if (part.type === 'text-delta') deltas.push(part.text);
  }
  const steps = await result.steps;
  const totalUsage = await result.totalUsage;
  return {
    deltas,
    partTypes: [...partTypes].sort(),
    text: await result.text, // the last step's
    finishReason: await result.finishReason,
    steps: steps.map((step) => ({
      finishReason: step.finishReason,
      text: step.text,
      toolCalls: step.toolCalls.map((call) => ({ name: call.toolName, input: call.input })),
      toolResults: step.toolResults.map((r) => ({ name: r.toolName, output: r.output })),
      reasoning: step.reasoningText ?? null,
    })),
    usage: { input: totalUsage.inputTokens, output: totalUsage.outputTokens },
  };
}

// A model that thinks before it calls the tool (CITY_THINKING_MODEL): the SDK sends reasoning only to
// the ids it knows as OpenAI's reasoning models, unless told with forceReasoning. With storing on (the
// default) it refers to the earlier step's items by id on the next step.
const thinking = { openai: { forceReasoning: true, reasoningEffort: 'low', reasoningSummary: 'auto' } };

const results = {};
const thinkingModel = process.env.CITY_THINKING_MODEL;
for (const model of (process.env.CITY_MODELS ?? '').split(',').filter(Boolean)) {
  try {
    results[model] = { generate: await generate(model), stream: await streamWithATool(model) };
    if (model === thinkingModel) results[model].thinking = await streamWithATool(model, thinking);
  } catch (error) {
    console.error(`${model}: ${error?.stack ?? error}`);
    if (error?.responseBody) console.error(`${model}: City answered ${error.statusCode}: ${error.responseBody}`);
    process.exit(1);
  }
}
await Promise.all(copies);
console.log(JSON.stringify({ results, answers }));
