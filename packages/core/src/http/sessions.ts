import type { Server as McpServer } from '@modelcontextprotocol/sdk/server/index.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { HttpRefusal, jsonRpcError } from './http-refusal.js';

/** One MCP session: its transport and server, and the principal that created it. */
export interface Session {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  readonly principal: string;
  /** `Date.now()` of the last request (ms). */
  lastSeen: number;
}

/** Limits of a {@link SessionTable}. */
export interface SessionLimits {
  /** All sessions of this process (`http.maxSessions`). */
  readonly maxSessions: number;
  /** Sessions one principal may hold at once (`http.maxSessionsPerPrincipal`). */
  readonly maxSessionsPerPrincipal: number;
  /** Idle time after which a session is closed (`http.sessionIdleSeconds`), seconds. */
  readonly idleSeconds: number;
}

/** A place reserved for a session being initialized; `commit` it with the session id, or `release` it. */
export interface SessionTicket {
  commit(id: string, session: Session): void;
  release(): void;
}

/**
 * The sessions of one process (MCP 2025-11-25 "Transports" §Session Management). Sessions are
 * bound to the principal that created them; a request naming a session of another principal, an
 * unknown or an expired one gets the same 404. Capacity is reserved before `initialize` runs, so
 * concurrent initializations cannot overshoot either cap, and one principal cannot take more than
 * `maxSessionsPerPrincipal` of the `maxSessions` places (a principal filling the table would
 * lock every other principal out for the idle timeout).
 */
export class SessionTable {
  readonly #sessions = new Map<string, Session>();
  /** Sessions plus reservations, per principal. */
  readonly #held = new Map<string, number>();
  #reserved = 0;
  readonly #sweep: NodeJS.Timeout;
  readonly #limits: SessionLimits;
  readonly #onSizeChange: (size: number) => void;

  /** @param onSizeChange - called with the number of open sessions after each change (metrics) */
  constructor(limits: SessionLimits, onSizeChange: (size: number) => void) {
    this.#limits = limits;
    this.#onSizeChange = onSizeChange;
    this.#sweep = setInterval(
      () => this.sweep(Date.now()),
      Math.min(30_000, (limits.idleSeconds * 1000) / 2),
    );
    this.#sweep.unref();
  }

  /** Open sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Reserves a place for a new session of `principal`.
   *
   * @throws HttpRefusal 503 `too_many_sessions` when the process is full; 429
   *   `too_many_sessions_for_principal` when this principal holds its share
   */
  reserve(principal: string): SessionTicket {
    if (this.#sessions.size + this.#reserved >= this.#limits.maxSessions)
      throw new HttpRefusal(503, 'too_many_sessions', jsonRpcError(-32000, 'Too many sessions'), {
        'Retry-After': '5',
      });
    const held = this.#held.get(principal) ?? 0;
    if (held >= this.#limits.maxSessionsPerPrincipal)
      throw new HttpRefusal(
        429,
        'too_many_sessions_for_principal',
        jsonRpcError(
          -32000,
          `Too many sessions for this principal (at most ${this.#limits.maxSessionsPerPrincipal}); end one with DELETE or wait for it to expire`,
        ),
        { 'Retry-After': '5' },
      );
    this.#held.set(principal, held + 1);
    this.#reserved++;
    let open = true;
    return {
      commit: (id, session) => {
        if (!open) return;
        open = false;
        this.#reserved--;
        this.#sessions.set(id, session);
        this.#onSizeChange(this.#sessions.size);
      },
      release: () => {
        if (!open) return;
        open = false;
        this.#reserved--;
        this.#drop(principal);
      },
    };
  }

  /**
   * The session `id` if it exists and belongs to `principal` (touching it), else undefined.
   */
  get(id: string | undefined, principal: string): Session | undefined {
    const session = id === undefined ? undefined : this.#sessions.get(id);
    if (!session || session.principal !== principal) return undefined;
    session.lastSeen = Date.now();
    return session;
  }

  /** Forgets `id` (the transport closed or the client sent DELETE). Idempotent. */
  delete(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    this.#drop(session.principal);
    this.#onSizeChange(this.#sessions.size);
  }

  /** Closes sessions idle since before `now - idleSeconds`. */
  sweep(now: number): void {
    const cutoff = now - this.#limits.idleSeconds * 1000;
    for (const [id, s] of this.#sessions) {
      if (s.lastSeen < cutoff) {
        this.delete(id);
        void s.transport.close();
        void s.server.close();
      }
    }
  }

  /** Stops the sweeper and closes every session. */
  async closeAll(): Promise<void> {
    clearInterval(this.#sweep);
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    this.#held.clear();
    this.#onSizeChange(0);
    await Promise.allSettled(
      all.map(async (s) => {
        await s.transport.close();
        await s.server.close();
      }),
    );
  }

  #drop(principal: string): void {
    const held = (this.#held.get(principal) ?? 1) - 1;
    if (held <= 0) this.#held.delete(principal);
    else this.#held.set(principal, held);
  }
}
