CREATE TABLE "federation_audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"verb" text NOT NULL,
	"resource" text NOT NULL,
	"resource_id" text,
	"status_code" integer NOT NULL,
	"outcome" text NOT NULL,
	"request_id" text,
	"detail" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "federation_audit_log_outcome_check" CHECK ("federation_audit_log"."outcome" in ('success', 'failure', 'denied', 'possible_token_leak'))
);
--> statement-breakpoint
CREATE TABLE "federation_ca_revocations" (
	"serial" text PRIMARY KEY NOT NULL,
	"revoked_at" timestamp with time zone DEFAULT now() NOT NULL,
	"reason_code" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federation_enrollment_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"grant_id" uuid NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"claim_id" uuid,
	"claim_expires_at" timestamp with time zone,
	"used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"failed_attempts" integer DEFAULT 0 NOT NULL,
	"cert_serial" text,
	"key_fingerprint" text,
	"certificate" text,
	"certificate_chain" text,
	CONSTRAINT "federation_enrollment_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "federation_grants" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"peer_id" uuid NOT NULL,
	"scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"activated_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"revoke_reason" text,
	"cert_revocation" text,
	"cert_revocation_attempts" integer DEFAULT 0 NOT NULL,
	"cert_revoked_at" timestamp with time zone,
	CONSTRAINT "federation_grants_status_check" CHECK ("federation_grants"."status" in ('pending', 'active', 'revoked')),
	CONSTRAINT "federation_grants_cert_revocation_check" CHECK ("federation_grants"."cert_revocation" is null or "federation_grants"."cert_revocation" in ('pending', 'done'))
);
--> statement-breakpoint
CREATE TABLE "federation_peers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"endpoint" text,
	"cert_serial" text,
	"cert_not_after" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "federation_peers_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "federation_rate_limits" (
	"key" text PRIMARY KEY NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"hits" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "federation_enrollment_tokens" ADD CONSTRAINT "federation_enrollment_tokens_grant_id_federation_grants_id_fk" FOREIGN KEY ("grant_id") REFERENCES "public"."federation_grants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "federation_grants" ADD CONSTRAINT "federation_grants_peer_id_federation_peers_id_fk" FOREIGN KEY ("peer_id") REFERENCES "public"."federation_peers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "federation_audit_log_resource_id_idx" ON "federation_audit_log" USING btree ("resource_id","id");--> statement-breakpoint
CREATE INDEX "federation_enrollment_tokens_grant_id_idx" ON "federation_enrollment_tokens" USING btree ("grant_id");--> statement-breakpoint
CREATE INDEX "federation_grants_peer_id_idx" ON "federation_grants" USING btree ("peer_id");