/**
 * A follower's stream cap: a client that shows at most N characters of a cell's output (the
 * notebook cannot take 100 MB) asks the agent not to send the rest. The journal keeps every
 * event; only what goes to that follower changes:
 * - stream events pass until their text adds up to the cap;
 * - the stream event that reaches it goes out as `stream_truncated` (its text up to the cap),
 *   under its own seq;
 * - later stream events are not sent (their seqs are skipped); every other event is.
 * The cut depends only on the journal's order, counted from seq 1, so a follower resuming from
 * any seq with the same cap (a reconnect) gets exactly what it has not seen yet.
 */
import type { JobEvent } from "../protocol/messages";
import type { Follower } from "./job";

/**
 * Wraps `deliver` so it sees the events after `fromSeq` with the cap applied. The wrapper must
 * be given every event from seq 1 (so it can count): follow from seq 0 and let it skip.
 */
export function capStreams(capChars: number, fromSeq: number, deliver: Follower): Follower {
  let shown = 0;
  let truncated = false;
  return (event: JobEvent) => {
    const body = event.event;
    let out: JobEvent | undefined = event;
    if (body.kind === "stream") {
      if (truncated) out = undefined;
      else if (shown + body.text.length < capChars) shown += body.text.length;
      else {
        truncated = true;
        const text = body.text.slice(0, capChars - shown);
        shown = capChars;
        out = { ...event, event: { kind: "stream_truncated", name: body.name, text, capChars } };
      }
    }
    if (out && event.seq > fromSeq) deliver(out);
  };
}
