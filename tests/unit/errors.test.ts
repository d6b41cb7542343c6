import { MAX_REPORTED_PROBLEMS, ValidationError } from '../../shared/errors';
import { fieldProblem } from '../../shared/validation';

describe('ValidationError', () => {
  it('reports one problem as its message', () => {
    const err = new ValidationError([fieldProblem('filters', 'an array', 3)]);
    expect(err.message).toBe('Expected an array for filters but received 3 of type number');
    expect(err.total).toBe(1);
  });

  it('lists at most MAX_REPORTED_PROBLEMS problems and says how many were left out', () => {
    const problems = Array.from({ length: 1_000_000 }, (_, i) => fieldProblem(`filters[${i}]`, 'a filter', 'x'));
    const err = new ValidationError(problems, 'task spec');
    expect(err.errors).toHaveLength(MAX_REPORTED_PROBLEMS);
    expect(err.total).toBe(1_000_000);
    expect(err.message).toMatch(/^1000000 problems in the task spec: Expected a filter for filters\[0\]/);
    expect(err.message).toMatch(/; and 999980 more problems not listed$/);
    expect(err.message.length).toBeLessThan(3000);
  });
});
