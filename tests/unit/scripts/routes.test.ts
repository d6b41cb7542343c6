/**
 * The local host's route templates, as the Functions host builds them: ASP.NET Core `Route`s
 * (azure-webjobs-sdk-extensions src/WebJobs.Extensions.Http/Routing/WebJobsRouteBuilder.cs), parsed by
 * dotnet/aspnetcore src/Http/Routing/src/Patterns/RoutePatternParser.cs and RouteParameterParser.cs, with the
 * inline constraints of RouteOptions' default ConstraintMap (src/Http/Routing/src/Constraints/*.cs) resolved by
 * DefaultInlineConstraintResolver. Each case names the constraint class whose Match it mirrors.
 */
import { allowsMethod, byNameIgnoringCase, compileRoute } from '../../../scripts/local-host/routes';
import { startHttpServer } from '../../../scripts/local-host/http-server';
import type { RegisteredFunction } from '../../../scripts/local-host/functions-core';

const matches = (template: string, value: string) => compileRoute(`api/x/${template}`).match(`/api/x/${value}`);

describe('inline constraints', () => {
  it.each<[string, string[], string[]]>([
    // IntRouteConstraint: int.TryParse(NumberStyles.Integer, invariant): sign and surrounding white space, 32 bits
    ['{v:int}', ['0', '42', '-7', '+7', '2147483647', '-2147483648', ' 5'], ['2147483648', '1.5', 'x', '0x10', '1e3']],
    // LongRouteConstraint: 64 bits
    ['{v:long}', ['9223372036854775807', '-9223372036854775808'], ['9223372036854775808', '1.0']],
    // BoolRouteConstraint: bool.TryParse, any case
    ['{v:bool}', ['true', 'False', 'TRUE'], ['1', 'yes', 'truee']],
    // DoubleRouteConstraint / FloatRouteConstraint: NumberStyles.Float | AllowThousands
    ['{v:double}', ['1', '-1.5', '1e10', '.5', '1,000.25', 'Infinity', 'NaN'], ['1.2.3', 'abc', '1e', '']],
    ['{v:float}', ['3.14', '-2E-3'], ['pi']],
    // DecimalRouteConstraint: no exponent limit beyond decimal's range
    ['{v:decimal}', ['12.50', '-0.001', '1e5'], ['1e30', 'x']],
    // GuidRouteConstraint: Guid.TryParse (D, N, B and P forms)
    [
      '{v:guid}',
      [
        '6F9619FF-8B86-D011-B42D-00CF4FC964FF',
        '6f9619ff8b86d011b42d00cf4fc964ff',
        '{6F9619FF-8B86-D011-B42D-00CF4FC964FF}',
        '(6F9619FF-8B86-D011-B42D-00CF4FC964FF)',
      ],
      ['6F9619FF-8B86-D011-B42D-00CF4FC964F', 'not-a-guid', '6F9619FF8B86-D011-B42D-00CF4FC964FF'],
    ],
    // DateTimeRouteConstraint: DateTime.TryParse with the invariant culture (its common forms)
    ['{v:datetime}', ['2024-02-29', '2024-01-31T10:20:30Z', '2024-01-31 10:20'], ['2023-02-29', 'today', '2024-13-01']],
    // (the M/d/yyyy form has slashes, so only a catch-all can take it)
    ['{*v:datetime}', ['12/31/2023', '1/2/2024 3:04 PM'], ['13/01/2024', '12/31/2023 13:00 PM']],
    // AlphaRouteConstraint: ^[a-z]*$ ignoring case
    ['{v:alpha}', ['abc', 'ABC', 'aBc'], ['abc1', 'a-b', 'é']],
    // MinLengthRouteConstraint, MaxLengthRouteConstraint, LengthRouteConstraint
    ['{v:minlength(3)}', ['abc', 'abcd'], ['ab']],
    ['{v:maxlength(3)}', ['a', 'abc'], ['abcd']],
    ['{v:length(3)}', ['abc'], ['ab', 'abcd']],
    ['{v:length(2,4)}', ['ab', 'abcd'], ['a', 'abcde']],
    // MinRouteConstraint, MaxRouteConstraint, RangeRouteConstraint: a long compared to the bounds
    ['{v:min(10)}', ['10', '11'], ['9', 'ten', '10.5']],
    ['{v:max(10)}', ['10', '-5'], ['11', 'ten']],
    ['{v:range(1,10)}', ['1', '10'], ['0', '11', 'five']],
    // RegexInlineRouteConstraint: CultureInvariant | IgnoreCase, IsMatch (anchored only by the pattern)
    ['{v:regex(^\\d{{3}}$)}', ['123'], ['1234', '12a']],
    ['{v:regex(b)}', ['abc', 'ABC'], ['xyz']],
    ['{v:regex(^(a|b)$)}', ['A', 'b'], ['ab']],
    // RequiredRouteConstraint
    ['{v:required}', ['x'], []],
    // FileNameRouteConstraint / NonFileNameRouteConstraint on a catch-all
    ['{*v:file}', ['a/b.txt', 'b.tar.gz', '.env'], ['a/b', 'b.']],
    ['{*v:nonfile}', ['a/b', 'b.'], ['a/b.txt']],
    // several chained, all must pass; names are looked up ignoring case
    ['{v:int:min(1)}', ['1', '99'], ['0', '-1', 'x']],
    ['{v:INT:Range(1,3)}', ['2'], ['4']],
  ])('%s', (template, good, bad) => {
    for (const value of good) expect([value, matches(template, value)]).toEqual([value, expect.any(Object)]);
    for (const value of bad) expect([value, matches(template, value)]).toEqual([value, undefined]);
  });
});

describe('templates', () => {
  it('gives route values for parameters, optional and default values, and catch-alls', () => {
    expect(matches('{id}', 'abc')).toEqual({ id: 'abc' });
    expect(matches('{id:int?}', '')).toEqual({});
    expect(matches('{id:int?}', '5')).toEqual({ id: '5' });
    expect(matches('{id:int?}', 'five')).toBeUndefined();
    expect(matches('{size=medium}', '')).toEqual({ size: 'medium' });
    expect(matches('{size=medium}', 'large')).toEqual({ size: 'large' });
    expect(matches('{n:int=5}', '')).toEqual({ n: '5' }); // a default is checked against its constraints too
    expect(matches('{*rest}', 'a/b/c')).toEqual({ rest: 'a/b/c' });
    expect(matches('{**rest}', 'a/b')).toEqual({ rest: 'a/b' });
    expect(matches('{*rest}', '')).toEqual({});
    expect(matches('{a}/{b?}', 'one')).toEqual({ a: 'one' });
    expect(matches('{a}/{b?}', 'one/two')).toEqual({ a: 'one', b: 'two' });
  });

  it('matches literals ignoring case, a trailing slash, complex segments and escaped braces', () => {
    expect(compileRoute('api/Health').match('/API/health/')).toEqual({});
    expect(compileRoute('api/files/{name}.{ext}').match('/api/files/a.b.jpg')).toEqual({ name: 'a.b', ext: 'jpg' });
    expect(compileRoute('api/{{literal}}').match('/api/{literal}')).toEqual({});
    expect(compileRoute('api/x').match('/api/x/y')).toBeUndefined();
    expect(compileRoute('api/{id}').match('/api//')).toBeUndefined();
  });

  it.each([
    ['api/{id:nope}', /The constraint entry 'id' - 'nope' on the route 'api\/{id:nope}' could not be resolved/],
    ['api/{id:min(x)}', /'min\(x\)' of 'id'.*'x' is not a 64-bit integer/],
    ['api/{id:range(1)}', /takes 2 arguments, got 1/],
    ['api/{id:int(3)}', /takes no arguments/],
    ['api/{*rest}/x', /catch-all parameter can only appear as the last segment/],
    ['api/{id', /incomplete parameter/],
    ['api/{a}{b}', /separated by a literal/],
    ['api/{id=1?}', /optional parameter cannot have a default value/],
  ])('refuses %s as ASP.NET Core does', (template, message) => {
    expect(() => compileRoute(template)).toThrow(message);
  });

  // HttpMethodRouteConstraint compares methods ignoring case; no methods means every method
  it('takes methods as a route constraint', () => {
    expect(allowsMethod(['GET', 'post'], 'POST')).toBe(true);
    expect(allowsMethod(['GET'], 'DELETE')).toBe(false);
    expect(allowsMethod(undefined, 'PATCH')).toBe(true);
  });

  // FunctionMetadataManager.cs (azure-functions-host) sorts functions by name with StringComparer.OrdinalIgnoreCase
  it('orders functions by name as OrdinalIgnoreCase does', () => {
    expect(['b', 'A', '_x', 'a1'].sort(byNameIgnoringCase)).toEqual(['A', 'a1', 'b', '_x']);
  });
});

// In the real host an unknown constraint throws while the routes are built (ScriptHost.OnHostInitialized →
// WebScriptHostHttpRoutesManager.InitializeHttpFunctionRoutes), so the host does not start.
it('refuses to start with a function whose route has an unknown constraint, naming the function', async () => {
  const fn = {
    name: 'badRoute',
    trigger: { type: 'httpTrigger', route: 'things/{id:number}', methods: ['GET'], authLevel: 'anonymous' },
    handler: async () => ({}),
  } as unknown as RegisteredFunction;
  await expect(
    startHttpServer({ port: 0, routePrefix: 'api', functions: [fn], log: () => undefined, keys: null }),
  ).rejects.toThrow(/^Function badRoute: The constraint entry 'id' - 'number' on the route 'api\/things\/{id:number}'/);
});

// No route matched (or none takes the method): ASP.NET Core's empty 404, FunctionInvocationMiddleware.cs writes nothing
it('answers a request no route takes with an empty 404, without Allow', async () => {
  const fn = {
    name: 'health',
    trigger: { type: 'httpTrigger', route: 'health', methods: ['GET'], authLevel: 'anonymous' },
    handler: async () => ({ status: 200, body: 'ok' }),
  } as unknown as RegisteredFunction;
  const server = await startHttpServer({
    port: 0,
    routePrefix: 'api',
    functions: [fn],
    log: () => undefined,
    keys: null,
  });
  try {
    for (const [method, path] of [
      ['DELETE', '/api/health'],
      ['GET', '/api/nope'],
      ['GET', '/health'],
    ]) {
      const res = await fetch(`${new URL(server.url).origin}${path}`, { method });
      expect([
        path,
        method,
        res.status,
        res.headers.get('allow'),
        res.headers.get('content-type'),
        await res.text(),
      ]).toEqual([path, method, 404, null, null, '']);
    }
  } finally {
    await server.stop(0);
  }
});
