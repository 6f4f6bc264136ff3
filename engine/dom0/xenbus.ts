/**
 * The backend's half of the xenbus handshake, shared by blkback and netback:
 * its `state` node under /local/domain/0/backend/..., a capped log of what
 * went wrong, and xenbus_dev_fatal (Linux drivers/xen/xenbus: write
 * /local/domain/0/error<backend>/error = "<errno> <message>", then Closing).
 */
import type { Xenstored } from './xenstored';

/** Xenbus states (Xen public/io/xenbus.h). */
export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;

export class XenbusBackendEnd {
  /** What went wrong, oldest first (capped at 200 lines). */
  readonly log: string[] = [];
  /** The backend's current XenbusState. */
  state: number = XenbusState.InitWait;

  constructor(
    private readonly xenstored: Xenstored,
    readonly backendPath: string,
  ) {}

  note(line: string): void {
    this.log.push(line);
    if (this.log.length > 200) this.log.shift();
  }

  /** Sets the state and writes it to the backend's `state` node. */
  switchState(s: number): void {
    this.state = s;
    this.xenstored.write(`${this.backendPath}/state`, String(s));
  }

  /** xenbus_dev_fatal: report (best effort), then Closing. */
  fatal(errno: number, msg: string): void {
    this.note(msg);
    try {
      this.xenstored.write(`/local/domain/0/error${this.backendPath}/error`, `${errno} ${msg}`);
    } catch {
      // the error node is best effort
    }
    this.switchState(XenbusState.Closing);
  }
}
