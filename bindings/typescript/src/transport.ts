// The seam between the client and what carries its messages. Written by hand.

/**
 * Carries whole messages: the Unix socket transport frames them on a byte
 * stream, the WebSocket transport sends one per binary frame.
 */
export interface Transport {
  /** Sends one whole encoded message. */
  send(msg: Uint8Array): void;
  /** Closes the connection; onclose follows. */
  close(): void;
  /** Set by the client: each whole message received. */
  onmessage: (msg: Uint8Array) => void;
  /** Set by the client: the connection ended (err says why, if it failed). */
  onclose: (err?: Error) => void;
}

/** Opens a connection; rejects with a ContinuumError (unavailable, unauthenticated, ...). */
export type Connector = () => Promise<Transport>;
