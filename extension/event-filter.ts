/**
 * The `event` exception filter condition as a set of ports: parsing and
 * rewriting setExceptionBreakpoints arguments so that one filter changes and
 * every other filter and condition stays (docs/debug-adapter.md, "Hypervisor
 * filters": `event` takes ports `1,2,5-9`, optionally `send` or `upcall`).
 */
import type { DebugProtocol } from '@vscode/debugprotocol';

/**
 * Parses an `event` filter condition into the ports it lists ("1,2,5-9",
 * optionally followed by `send`/`upcall`); ranges are expanded up to 4096
 * ports. Returns [] for an empty or unparsable condition.
 */
export function parseEventPorts(condition: string | undefined): number[] {
  const out = new Set<number>();
  for (const part of (condition ?? '').split(/[,\s]+/)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    for (let p = a; p <= b && p - a < 4096; p++) out.add(p);
  }
  return [...out].sort((x, y) => x - y);
}

/**
 * Returns new setExceptionBreakpoints arguments equal to `prev` with the
 * `event` filter enabled for `ports` (or disabled when `ports` is empty);
 * every other filter and its condition is kept.
 */
export function withEventPorts(
  prev: DebugProtocol.SetExceptionBreakpointsArguments | null,
  ports: number[],
): DebugProtocol.SetExceptionBreakpointsArguments {
  const filters = (prev?.filters ?? []).filter((f) => f !== 'event');
  const filterOptions = (prev?.filterOptions ?? []).filter((o) => o.filterId !== 'event');
  if (ports.length) filterOptions.push({ filterId: 'event', condition: ports.join(',') });
  const args: DebugProtocol.SetExceptionBreakpointsArguments = { filters, filterOptions };
  if (prev?.exceptionOptions) args.exceptionOptions = prev.exceptionOptions;
  return args;
}

/** Current `event` filter ports from recorded setExceptionBreakpoints arguments. */
export function eventPortsOf(args: DebugProtocol.SetExceptionBreakpointsArguments | null): number[] {
  const opt = args?.filterOptions?.find((o) => o.filterId === 'event');
  if (opt) return parseEventPorts(opt.condition);
  return [];
}
