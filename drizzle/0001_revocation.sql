CREATE SEQUENCE "public"."federation_crl_number_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
ALTER TABLE "federation_grants" ADD COLUMN "cert_revocation_next_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "federation_grants" ADD COLUMN "cert_revocation_error" text;--> statement-breakpoint
ALTER TABLE "federation_peers" ADD COLUMN "cert_revoked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "federation_peers" ADD COLUMN "cert_revocation_reason" text;--> statement-breakpoint
CREATE INDEX "federation_grants_cert_revocation_pending_idx" ON "federation_grants" USING btree ("cert_revocation_next_at") WHERE "federation_grants"."cert_revocation" = 'pending';