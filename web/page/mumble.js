// mumble.js: the few Mumble control messages the join page uses, as a
// minimal protobuf encoder and decoder, and the framing of the web
// listener's WebSocket (each binary message is one Mumble TCP frame: a
// 2-byte type, a 4-byte length, the protobuf payload).
"use strict";

const Mumble = (() => {
  // Field kinds: u = varint (uint32/uint64/int32/enum), b = bool,
  // s = string, y = bytes, f = float (fixed32). A name ending in "[]" is
  // repeated. Unknown fields are skipped.
  const schema = {
    0: ["Version", { 1: "version_v1:u", 2: "release:s", 3: "os:s", 4: "os_version:s", 5: "version_v2:u" }],
    2: ["Authenticate", { 1: "username:s", 2: "password:s", 3: "tokens[]:s", 4: "celt_versions[]:u", 5: "opus:b", 6: "client_type:u" }],
    3: ["Ping", { 1: "timestamp:u", 2: "good:u", 3: "late:u", 4: "lost:u", 5: "resync:u", 6: "udp_packets:u", 7: "tcp_packets:u" }],
    4: ["Reject", { 1: "type:u", 2: "reason:s" }],
    5: ["ServerSync", { 1: "session:u", 2: "max_bandwidth:u", 3: "welcome_text:s", 4: "permissions:u" }],
    6: ["ChannelRemove", { 1: "channel_id:u" }],
    7: ["ChannelState", { 1: "channel_id:u", 2: "parent:u", 3: "name:s", 4: "links[]:u", 5: "description:s", 6: "links_add[]:u", 7: "links_remove[]:u", 8: "temporary:b", 9: "position:u", 11: "max_users:u", 12: "is_enter_restricted:b", 13: "can_enter:b" }],
    8: ["UserRemove", { 1: "session:u", 2: "actor:u", 3: "reason:s", 4: "ban:b" }],
    9: ["UserState", { 1: "session:u", 2: "actor:u", 3: "name:s", 4: "user_id:u", 5: "channel_id:u", 6: "mute:b", 7: "deaf:b", 8: "suppress:b", 9: "self_mute:b", 10: "self_deaf:b", 14: "comment:s", 15: "hash:s", 18: "priority_speaker:b", 19: "recording:b" }],
    11: ["TextMessage", { 1: "actor:u", 2: "session[]:u", 3: "channel_id[]:u", 4: "tree_id[]:u", 5: "message:s" }],
    12: ["PermissionDenied", { 1: "permission:u", 2: "channel_id:u", 3: "session:u", 4: "reason:s", 5: "type:u", 6: "name:s" }],
    20: ["PermissionQuery", { 1: "channel_id:u", 2: "permissions:u", 3: "flush:b" }],
    21: ["CodecVersion", { 1: "alpha:u", 2: "beta:u", 3: "prefer_alpha:b", 4: "opus:b" }],
    24: ["ServerConfig", { 1: "max_bandwidth:u", 2: "welcome_text:s", 3: "allow_html:b", 4: "message_length:u", 5: "image_message_length:u", 6: "max_users:u", 7: "recording_allowed:b" }],
  };
  const SIGNAL = 100; // Plenum's WebRTC signalling, a UTF-8 JSON payload
  const types = {};
  const fields = {}; // type -> field name -> [number, kind, repeated]
  for (const [t, [name, f]] of Object.entries(schema)) {
    types[name] = +t;
    fields[t] = {};
    for (const [num, spec] of Object.entries(f)) {
      const [n, kind] = spec.split(":");
      const rep = n.endsWith("[]");
      fields[t][rep ? n.slice(0, -2) : n] = [+num, kind, rep];
    }
  }
  const utf8 = new TextEncoder();
  const fromUtf8 = new TextDecoder();

  // Varints are written with arithmetic, not bit operations, so that
  // values up to 2^53 (Version's v2) survive.
  function putVarint(out, v) {
    v = Math.max(0, Math.floor(v));
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
  }

  function encode(typeName, msg) {
    const t = types[typeName];
    const out = [];
    for (const [name, value] of Object.entries(msg)) {
      const f = fields[t][name];
      if (!f || value === undefined || value === null) continue;
      const [num, kind, rep] = f;
      for (const v of rep ? value : [value]) {
        if (kind === "s" || kind === "y") {
          const bytes = kind === "s" ? utf8.encode(v) : v;
          putVarint(out, num * 8 + 2);
          putVarint(out, bytes.length);
          for (const b of bytes) out.push(b);
        } else if (kind === "f") {
          putVarint(out, num * 8 + 5);
          const b = new Uint8Array(new Float32Array([v]).buffer);
          out.push(...b);
        } else {
          putVarint(out, num * 8);
          putVarint(out, kind === "b" ? (v ? 1 : 0) : v);
        }
      }
    }
    return frame(t, new Uint8Array(out));
  }

  function frame(t, payload) {
    const buf = new Uint8Array(6 + payload.length);
    const dv = new DataView(buf.buffer);
    dv.setUint16(0, t);
    dv.setUint32(2, payload.length);
    buf.set(payload, 6);
    return buf;
  }

  function signal(obj) {
    return frame(SIGNAL, utf8.encode(JSON.stringify(obj)));
  }

  // decode turns one WebSocket message into {type, name, msg}; an
  // unknown type gives name undefined. It throws on a malformed frame.
  function decode(data) {
    const buf = new Uint8Array(data);
    if (buf.length < 6) throw new Error("short frame");
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const t = dv.getUint16(0);
    const len = dv.getUint32(2);
    if (len !== buf.length - 6) throw new Error("frame length mismatch");
    const payload = buf.subarray(6);
    if (t === SIGNAL) return { type: t, name: "Signal", msg: JSON.parse(fromUtf8.decode(payload)) };
    if (!schema[t]) return { type: t };
    const [name, spec] = schema[t];
    return { type: t, name, msg: parse(payload, spec) };
  }

  function parse(b, spec) {
    const msg = {};
    let i = 0;
    const varint = () => {
      let v = 0, mul = 1, byte;
      do {
        if (i >= b.length) throw new Error("truncated varint");
        byte = b[i++];
        v += (byte & 0x7f) * mul;
        mul *= 0x80;
      } while (byte & 0x80);
      return v;
    };
    while (i < b.length) {
      const key = varint();
      const num = Math.floor(key / 8), wire = key % 8;
      if (num === 0) throw new Error("field number 0");
      const s = spec[num];
      const [name, kind] = s ? s.split(":") : [null, null];
      let v;
      if (wire === 0) v = varint();
      else if (wire === 1) { i += 8; v = undefined; }
      else if (wire === 5) {
        v = new DataView(b.buffer, b.byteOffset + i, 4).getFloat32(0, true);
        i += 4;
      } else if (wire === 2) {
        const n = varint();
        if (i + n > b.length) throw new Error("truncated field");
        const bytes = b.subarray(i, i + n);
        i += n;
        if (kind === "s") v = fromUtf8.decode(bytes);
        else if (kind === "y") v = bytes.slice();
        else if (kind && name.endsWith("[]")) { // packed repeated varints
          const vals = [];
          const save = [b, i];
          b = bytes; i = 0;
          while (i < b.length) vals.push(varint());
          [b, i] = save;
          msg[name.slice(0, -2)] = (msg[name.slice(0, -2)] || []).concat(vals);
          continue;
        }
      } else throw new Error("unsupported wire type " + wire);
      if (i > b.length) throw new Error("truncated field");
      if (!name || v === undefined) continue;
      if (kind === "b") v = v !== 0;
      if (name.endsWith("[]")) {
        const n = name.slice(0, -2);
        (msg[n] = msg[n] || []).push(v);
      } else msg[name] = v;
    }
    return msg;
  }

  return { encode, decode, signal, types, SIGNAL };
})();
