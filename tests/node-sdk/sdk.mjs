// The official OpenAI Node SDK, unchanged, against ragd's /v1 at RAGD_BASE_URL with the API
// key RAGD_API_KEY (embeddings with RAGD_EMBEDDING_MODEL). `node sdk.mjs answers` covers
// models, completions whole and streamed, RAG, embeddings and an error; `node sdk.mjs tools` a
// tool-calling round trip. Prints one JSON object of what it observed, for
// tests/api/openai_node_sdk.rs to judge.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.RAGD_BASE_URL,
  apiKey: process.env.RAGD_API_KEY,
  maxRetries: 0,
});
const model = "gpt-4o-mini";

async function answers() {
  const messages = [{ role: "user", content: "Say hello" }];
  const out = { models: [] };
  for await (const listed of client.models.list()) {
    out.models.push(listed.id);
  }

  const completion = await client.chat.completions.create({ model, messages });
  out.content = completion.choices[0].message.content;
  out.total_tokens = completion.usage.total_tokens;

  const parts = [];
  const stream = await client.chat.completions.create({
    model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const chunk of stream) {
    parts.push(chunk.choices[0]?.delta?.content ?? "");
    if (chunk.usage) {
      out.stream_total_tokens = chunk.usage.total_tokens;
    }
  }
  out.streamed = parts.join("");

  // Unknown body fields go out as they are.
  const grounded = await client.chat.completions.create({
    model,
    messages,
    ragd: { use_rag: true, top_k: 3 },
  });
  out.citations = grounded.citations;

  // Without encoding_format the SDK asks for base64 and decodes it into numbers.
  const embedding = { model: process.env.RAGD_EMBEDDING_MODEL, input: ["one", "two"] };
  const decoded = await client.embeddings.create(embedding);
  const base64 = await client.embeddings.create({ ...embedding, encoding_format: "base64" });
  const floats = await client.embeddings.create({ ...embedding, encoding_format: "float" });
  out.embedding_lengths = decoded.data.map((item) => item.embedding.length);
  out.base64_types = base64.data.map((item) => typeof item.embedding);
  out.decoded_equals_float = decoded.data.every((item, i) =>
    item.embedding.every((value, j) => value === Math.fround(floats.data[i].embedding[j])),
  );

  try {
    await client.chat.completions.create({ model: "ollama/llama3.2", messages });
  } catch (error) {
    if (!(error instanceof OpenAI.APIError)) throw error;
    out.error_class = error.constructor.name;
    out.error_status = error.status;
    out.error_code = error.code;
    out.error_request_id = error.requestID;
  }
  return out;
}

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
      },
    },
  },
  { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } },
];

async function toolCalls() {
  const messages = [{ role: "user", content: "Weather and time in Paris?" }];
  const out = {};

  const completion = await client.chat.completions.create({ model, messages, tools });
  const message = completion.choices[0].message;
  out.finish_reason = completion.choices[0].finish_reason;
  out.content = message.content;
  out.calls = message.tool_calls.map((call) => [
    call.id,
    call.function.name,
    JSON.parse(call.function.arguments),
  ]);

  const calls = [];
  const stream = await client.chat.completions.create({ model, messages, tools, stream: true });
  for await (const chunk of stream) {
    for (const piece of chunk.choices[0]?.delta?.tool_calls ?? []) {
      calls[piece.index] ??= { id: null, name: "", arguments: "" };
      const call = calls[piece.index];
      call.id = piece.id ?? call.id;
      call.name += piece.function?.name ?? "";
      call.arguments += piece.function?.arguments ?? "";
    }
    if (chunk.choices[0]?.finish_reason) {
      out.streamed_finish_reason = chunk.choices[0].finish_reason;
    }
  }
  out.streamed_calls = calls.map((call) => [call.id, call.name, JSON.parse(call.arguments)]);

  // The SDK's own message object goes back as it is, followed by the results.
  messages.push(message);
  for (const call of message.tool_calls) {
    const content = call.function.name === "get_weather" ? "18C" : "14:05";
    messages.push({ role: "tool", tool_call_id: call.id, content });
  }
  const answer = await client.chat.completions.create({ model, messages, tools });
  out.answer_finish_reason = answer.choices[0].finish_reason;
  return out;
}

const modes = { answers, tools: toolCalls };
const mode = modes[process.argv[2]];
if (!mode) {
  throw new Error(`usage: node sdk.mjs ${Object.keys(modes).join("|")}`);
}
console.log(JSON.stringify(await mode()));
