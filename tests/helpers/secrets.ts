/**
 * Finding secrets in text: every form a secret may take on its way into a log, a JSON body, a queue
 * message or a URL (as it is, URL-encoded, JSON-escaped, base64 or base64url at any byte alignment),
 * and any SAS signature (`sig=`) or connection-string key, whatever the secret.
 */

export interface Secret {
  readonly name: string;
  readonly value: string;
}

export interface Hit {
  readonly secret: string;
  readonly form: string;
  readonly where: string;
  /** A few characters either side of the hit, with the hit itself masked. */
  readonly context: string;
}

/**
 * The base64 text of `value` as it appears inside the base64 of any longer text: for each of the
 * three alignments, the characters that depend only on `value`'s bytes.
 */
function base64Forms(value: Buffer, alphabet: 'base64' | 'base64url'): string[] {
  return [0, 1, 2].map((offset) => {
    const text = Buffer.concat([Buffer.alloc(offset), value]).toString(alphabet);
    const first = [0, 2, 3][offset];
    const last = Math.floor((offset + value.length) / 3) * 4;
    return text.slice(first, last);
  });
}

/** Every form of a secret worth looking for, each at least 12 characters long. */
export function secretForms(secret: Secret): { form: string; text: string }[] {
  const bytes = Buffer.from(secret.value);
  const forms = [
    { form: 'as is', text: secret.value },
    { form: 'URL-encoded', text: encodeURIComponent(secret.value) },
    { form: 'JSON-escaped', text: JSON.stringify(secret.value).slice(1, -1) },
    ...base64Forms(bytes, 'base64').map((text, i) => ({ form: `base64 (alignment ${i})`, text })),
    ...base64Forms(bytes, 'base64url').map((text, i) => ({ form: `base64url (alignment ${i})`, text })),
  ];
  const seen = new Set<string>();
  return forms.filter(({ text }) => text.length >= 12 && !seen.has(text) && seen.add(text));
}

/** Whatever the secret: a SAS signature, an account key or a SAS token in a connection string. */
const ANY_SECRET: { form: string; pattern: RegExp }[] = [
  { form: 'a SAS signature (sig=)', pattern: /[?&;]sig=(?!REDACTED\b)[^&\s"'<>]{8,}/i },
  { form: 'AccountKey=', pattern: /AccountKey=(?!REDACTED\b)[^;\s"']{8,}/i },
  { form: 'SharedAccessSignature=', pattern: /SharedAccessSignature=(?!REDACTED\b)[^;\s"']{8,}/i },
];

function around(text: string, index: number, length: number): string {
  const before = text.slice(Math.max(0, index - 60), index);
  const after = text.slice(index + length, index + length + 60);
  return `${before}«secret»${after}`.replace(/\s+/g, ' ');
}

export class SecretScanner {
  readonly hits: Hit[] = [];
  /** Where the scanner looked, with how many characters, so a test can show it looked everywhere. */
  readonly scanned = new Map<string, number>();
  private readonly forms: { secret: string; form: string; text: string }[];

  constructor(secrets: readonly Secret[]) {
    this.forms = secrets.flatMap((s) => secretForms(s).map((f) => ({ secret: s.name, ...f })));
  }

  scan(where: string, text: string): void {
    this.scanned.set(where, (this.scanned.get(where) ?? 0) + text.length);
    for (const { secret, form, text: needle } of this.forms) {
      const index = text.indexOf(needle);
      if (index >= 0) this.hits.push({ secret, form, where, context: around(text, index, needle.length) });
    }
    for (const { form, pattern } of ANY_SECRET) {
      const match = pattern.exec(text);
      if (match) this.hits.push({ secret: form, form, where, context: around(text, match.index, match[0].length) });
    }
  }

  /** One line per hit, for a failure message that says where each secret was found. */
  report(): string[] {
    return this.hits.map((h) => `${h.secret} (${h.form}) in ${h.where}: …${h.context}…`);
  }
}
