import { describeError, redactSecrets } from '../../shared/redact';

describe('redactSecrets', () => {
  it('masks SAS signatures, function keys, connection-string keys and Authorization credentials', () => {
    const cases: [string, string][] = [
      [
        'GET https://a.blob.core.windows.net/c/b.png?sv=2024-08-04&sp=r&sig=AbC%2Bd%3D&se=2030',
        'GET https://a.blob.core.windows.net/c/b.png?sv=2024-08-04&sp=r&sig=REDACTED&se=2030',
      ],
      ['POST /api/jobs?filters=blur&code=fk_0123456789abcdef', 'POST /api/jobs?filters=blur&code=REDACTED'],
      [
        'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vd+M02x/N==;EndpointSuffix=core.windows.net',
        'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=REDACTED;EndpointSuffix=core.windows.net',
      ],
      [
        'BlobEndpoint=https://a/;SharedAccessSignature=sv=2022&ss=b&sig=xyz',
        'BlobEndpoint=https://a/;SharedAccessSignature=REDACTED',
      ],
      [
        'InstrumentationKey=0f1e2d3c-4b5a;IngestionEndpoint=https://x/',
        'InstrumentationKey=REDACTED;IngestionEndpoint=https://x/',
      ],
      ['authorization: SharedKey acct:dGhpcyBpcyBhIHNpZw==', 'authorization: SharedKey acct:REDACTED'],
      ['Authorization: Bearer eyJ0eXAi.eyJhdWQi.c2ln', 'Authorization: Bearer REDACTED'],
    ];
    for (const [text, redacted] of cases) expect(redactSecrets(text)).toBe(redacted);
  });

  it('leaves ordinary text alone', () => {
    for (const text of [
      "No image named 'sig.png' in the images container",
      'error code=42, the design=sig',
      'Expected one of the query parameters overwrite, code for query.x',
      'connect ECONNREFUSED 127.0.0.1:10000',
    ])
      expect(redactSecrets(text)).toBe(text);
  });

  it('describes an error by its stack, masked', () => {
    const described = describeError(new Error('failed: https://a/c?sig=secret123'));
    expect(described).toMatch(/^Error: failed: https:\/\/a\/c\?sig=REDACTED\n\s+at /);
    expect(describeError('plain AccountKey=abc')).toBe('plain AccountKey=REDACTED');
  });
});
