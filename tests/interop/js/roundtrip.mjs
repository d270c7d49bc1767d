// One MQTT.js subscriber and one publisher through the broker; prints what was received as JSON.
// Usage: node roundtrip.mjs PORT PROTOCOL_VERSION QOS [TOPIC_ALIAS_MAXIMUM [SCHEME]]
// With a Topic Alias Maximum (MQTT 5), the subscriber accepts topic aliases and the messages
// all go to one topic, so that the broker sends it once and the alias after.
import mqtt from "mqtt";

const [port, protocolVersion, qos, aliases] = process.argv.slice(2, 6).map(Number);
const scheme = process.argv[6] || "mqtt";  // "ws": MQTT over WebSockets
const url = `${scheme}://127.0.0.1:${port}`;
// MQTT 3.1 is protocol name "MQIsdp" at level 3; MQTT.js sends "MQTT" unless told otherwise.
const base = { protocolVersion, reconnectPeriod: 0, connectTimeout: 5000,
  ...(protocolVersion === 3 ? { protocolId: "MQIsdp" } : {}) };
const timeout = setTimeout(() => {
  console.error("timed out");
  process.exit(2);
}, 10000);

const sub = await mqtt.connectAsync(url, { ...base, clientId: `js-sub-${protocolVersion}-${qos}`,
  ...(aliases ? { properties: { topicAliasMaximum: aliases } } : {}) });
const got = [];
const done = new Promise((resolve) => {
  sub.on("message", (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), qos: packet.qos,
      ...(aliases ? { alias: packet.properties?.topicAlias ?? null } : {}) });
    if (got.length === 3) resolve();
  });
});
await sub.subscribeAsync("js/#", { qos });
const pub = await mqtt.connectAsync(url, { ...base, clientId: `js-pub-${protocolVersion}-${qos}` });
for (let i = 0; i < 3; i++) {
  await pub.publishAsync(aliases ? "js/aliased" : `js/${i}`, `message ${i}`, { qos });
}
await done;
await pub.endAsync();
await sub.endAsync();
clearTimeout(timeout);
console.log(JSON.stringify(got));
