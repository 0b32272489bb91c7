// Types of the runtime pieces the generated method groups hand out.
// Written by hand.

import type { Event, Scope } from "./gen/types.js";

/** One call of a provided command, as its handler sees it. */
export interface Invocation {
  /** Id of this invocation (commands/cancel names it). */
  readonly id: string;
  readonly command: string;
  /** Id of the calling client. */
  readonly caller: string;
  /** Unix ms by which the caller stops waiting; 0 for none. */
  readonly deadlineMs: number;
  /** Aborted when the caller went away or its deadline passed. */
  readonly signal: AbortSignal;
}

/** Answers commands/handle: return the result, or throw (a ContinuumError keeps its code). */
export type CommandHandler = (params: any, invocation: Invocation) => unknown | Promise<unknown>;

export interface ProvideOptions {
  /** environment (default) or grid. */
  naturalScope?: Scope;
  description?: string;
  idempotent?: boolean;
}

/** A command this client provides; close() unregisters it. */
export interface Provision {
  readonly name: string;
  close(): Promise<void>;
}

/**
 * Events of one events/subscribe, as an async iterator. The loop ends when
 * the subscription or the client is closed; breaking out of it unsubscribes.
 */
export interface Subscription extends AsyncIterableIterator<Event> {
  /** Subscription id (carried by each events/event). */
  readonly id: string;
  /** The seq delivery started after. */
  readonly cursor: number | bigint;
  /** Events the daemon dropped because this subscriber fell behind (events/lagged). */
  readonly dropped: number;
  /** The next event, or undefined once closed; rejects with DeadlineExceededError after timeoutMs. */
  next(): Promise<IteratorResult<Event>>;
  nextEvent(timeoutMs?: number): Promise<Event | undefined>;
  close(): Promise<void>;
}
