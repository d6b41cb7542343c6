/**
 * The parts of the API's JSON the CLI reads (see the README for full responses). Declared here,
 * not imported from shared/, because they describe the wire format, which is the contract; nested
 * shapes the app serializes unchanged are the app's own types.
 */
import type { CapabilityMetrics as SnapshotCapability } from '../../shared/metrics/snapshot';
import type { JobStatus } from '../../shared/tasks/jobs';
import type { TaskResult } from '../../shared/storage/images';
import type { TaskStatus } from '../../shared/tasks/store';

export type { PurgeReport } from '../../shared/tasks/purge';

export interface Health {
  readonly status: string;
  readonly checks: Readonly<Record<string, string>>;
  readonly version?: string;
}

export interface FilterCatalog {
  readonly filters: readonly { readonly name: string; readonly capability: string }[];
  readonly capabilities: readonly {
    readonly name: string;
    readonly queue: string;
    readonly filters: readonly string[];
  }[];
}

export interface WorkerList {
  readonly count: number;
  readonly workers: readonly { readonly id: string; readonly status: string; readonly in_flight?: number }[];
}

export interface ImageList {
  readonly container: string;
  readonly count: number;
  readonly images: readonly { readonly name: string; readonly bytes: number }[];
}

export interface StoredImage {
  readonly name: string;
  readonly content_type: string;
  readonly bytes: number;
}

export interface SubmittedJob {
  readonly job_id: string;
  readonly status_url: string;
  readonly tasks: readonly {
    readonly task_id: string;
    readonly image: string;
    readonly capability: string;
    readonly status: string;
  }[];
}

export interface TaskRecord {
  readonly task_id: string;
  readonly job_id: string;
  readonly status: TaskStatus;
  readonly image: string;
  readonly capability: string;
  readonly created_at: string;
  readonly completed_at: string | null;
  readonly duration_ms: number | null;
  readonly output: TaskResult | null;
  readonly failure_type: string | null;
  readonly failure_reason: string | null;
  readonly error: string | null;
}

export interface Job {
  readonly job_id: string;
  readonly status: JobStatus;
  readonly total: number;
  readonly counts: Readonly<Record<TaskStatus, number>>;
  readonly tasks: readonly TaskRecord[];
}

export interface Recommendation {
  readonly current_workers: number;
  readonly recommended_workers: number;
  readonly action: string;
  readonly reason: string;
  readonly confidence: number;
  readonly urgency: string;
  readonly keda_replicas: number;
}

export interface CapabilityMetrics {
  readonly queue: string;
  readonly queue_length: number;
  readonly poison_length: number;
  readonly oldest_message_age_s: number | null;
  readonly workers: SnapshotCapability['workers'];
  readonly tasks: SnapshotCapability['tasks'];
  readonly recommendation: Recommendation;
}

export interface Snapshot {
  readonly timestamp: string;
  readonly window_s?: number | null;
  readonly host: { readonly cpu_percent: number; readonly memory_percent: number; readonly memory_used_mb: number };
  readonly capabilities: Readonly<Record<string, CapabilityMetrics>>;
}

export interface DeadLetter {
  readonly id: string;
  readonly task_id: string | null;
  readonly reason: string;
  readonly dequeue_count?: number | null;
  readonly failed_at?: string | null;
}

export interface DeadLetters {
  readonly capabilities: readonly {
    readonly capability: string;
    readonly poison_queue: string;
    readonly waiting_in_poison_queue: number;
    readonly count: number;
    readonly dead_letters: readonly DeadLetter[];
  }[];
}

export interface RequeueResult {
  readonly capability: string;
  readonly queue: string;
  readonly requeued: number;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

export type { DeleteReport, RetryOutcome } from '../../shared/tasks/job-actions';

/** A task of GET /jobs/{id} with what the job view shows besides the record. */
export interface JobTask extends TaskRecord {
  readonly attempts: number;
  readonly worker_id: string | null;
  readonly image_url: string;
  readonly result_url: string;
}

export interface JobDetail extends Job {
  readonly tasks: readonly JobTask[];
}

/** One job of GET /jobs. */
export interface ListedJob {
  readonly job_id: string;
  readonly status: JobStatus;
  readonly created_at: string;
  readonly total: number;
  readonly counts: Readonly<Record<TaskStatus, number>>;
  readonly capability: string;
  readonly images: number;
  readonly filters: readonly string[];
  readonly output_format: string;
  readonly retries: number;
}

export interface JobList {
  readonly jobs: readonly ListedJob[];
  readonly count: number;
  readonly continuation: string | null;
  readonly next_url: string | null;
}

export const isFinished = (status: JobStatus): boolean => status !== 'queued' && status !== 'processing';
