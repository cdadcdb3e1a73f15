/**
 * The DisplaySink of the remote TypeScript runtime: the display API of local cells
 * (kernel/display, created over this sink) publishes runner messages instead of iopub ones.
 */
import type { DisplayMessage, DisplaySink } from "../../../kernel/display/types";
import type { RunnerChannel } from "./channel";

export function runnerSink(channel: RunnerChannel): DisplaySink {
  return {
    publish(message: DisplayMessage) {
      switch (message.msgType) {
        case "display_data": {
          const displayId = message.content.transient?.display_id;
          channel.send({ type: "display", data: message.content.data, metadata: message.content.metadata, ...(displayId ? { displayId } : {}) });
          return;
        }
        case "update_display_data":
          channel.send({ type: "update_display", data: message.content.data, metadata: message.content.metadata, displayId: message.content.transient.display_id });
          return;
        case "clear_output":
          channel.send({ type: "clear_output", wait: message.content.wait });
      }
    },
  };
}
