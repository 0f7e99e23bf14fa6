// What a failed call says to a person: the server's message (it names the field and what to do).
import { Code, ConnectError } from "@connectrpc/connect";

export interface Problem {
  code: string;
  message: string;
  /** 1-based column in the filter text when the search parser said where it failed. */
  column?: number;
}

const COLUMN = /\bat column (\d+)\b/;

export function problemOf(err: unknown): Problem {
  if (err instanceof ConnectError) {
    const message = err.rawMessage || Code[err.code];
    const match = COLUMN.exec(message);
    return {
      code: Code[err.code] ?? String(err.code),
      message,
      ...(match ? { column: Number(match[1]) } : {}),
    };
  }
  if (err instanceof Error) return { code: "Unknown", message: err.message };
  return { code: "Unknown", message: String(err) };
}

export function isCode(err: unknown, code: Code): boolean {
  return err instanceof ConnectError && err.code === code;
}
