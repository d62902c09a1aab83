// The Vercel AI SDK's default OpenAI provider, `openai(id)` (the Responses API since AI SDK 5), against
// City as a developer points it there: only OPENAI_BASE_URL and OPENAI_API_KEY set, nothing else.
// For each model in CITY_MODELS (comma-separated): `generateText`, then `streamText` with a tool the
// SDK runs itself (two steps: the model calls the tool, then answers its result).
// Prints one JSON object (model → what came back) on stdout; aihub/tests/test_clients.py asserts it.
// Any error ends the process with a non-zero status and the error on stderr.
import { openai } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const FORECAST = 'sunny, 21 °C';

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

async function streamWithATool(model) {
  const result = streamText({
    model: openai(model),
    prompt: 'What is the weather in Paris?',
    tools: { get_weather: getWeather },
    stopWhen: stepCountIs(3), // room for a third step, so that a loop that never ends shows as one
    maxRetries: 0,
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
    })),
    usage: { input: totalUsage.inputTokens, output: totalUsage.outputTokens },
  };
}

const results = {};
for (const model of (process.env.CITY_MODELS ?? '').split(',').filter(Boolean)) {
  try {
    results[model] = { generate: await generate(model), stream: await streamWithATool(model) };
  } catch (error) {
    console.error(`${model}: ${error?.stack ?? error}`);
    if (error?.responseBody) console.error(`${model}: City answered ${error.statusCode}: ${error.responseBody}`);
    process.exit(1);
  }
}
console.log(JSON.stringify(results));
