-- One database per service that keeps state: services share contracts, never databases.
-- Used by compose and by the dev overlay's PostgreSQL (docker-entrypoint-initdb.d).
CREATE DATABASE intake OWNER helpdesk;
CREATE DATABASE tickets OWNER helpdesk;
CREATE DATABASE routing OWNER helpdesk;
CREATE DATABASE escalation OWNER helpdesk;
CREATE DATABASE notify OWNER helpdesk;
