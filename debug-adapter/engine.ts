/**
 * The engine the adapter drives. engine/machine.ts (`createMachine`) is the
 * implementation; until it is part of the build this stub reports that the
 * guest cannot be started.
 */
import type { DomainConfig, Machine } from '../engine/machine-api';

/** Creates the machine for a validated configuration. Throws Error when the engine cannot build the guest. */
export function createMachine(config: DomainConfig): Machine {
  void config;
  throw new Error('the pvscope engine is not available in this build');
}
