// The official mongo image runs this once, on an empty data directory, from
// /docker-entrypoint-initdb.d, in mongosh logged in as the root user
// (docker-compose.yml mounts it there). analytics-projector gets its own user that can
// read and write only its read-model database; backup-runner gets one that only reads it.
const password = process.env.ANALYTICS_PROJECTOR_MONGO_PASSWORD;
if (!password) {
  throw new Error("set ANALYTICS_PROJECTOR_MONGO_PASSWORD (see .env.example)");
}
const backupPassword = process.env.BACKUP_RUNNER_MONGO_PASSWORD;
if (!backupPassword) {
  throw new Error("set BACKUP_RUNNER_MONGO_PASSWORD (see .env.example)");
}
db.getSiblingDB("admin").createUser({
  user: "analytics_projector",
  pwd: password,
  roles: [{ role: "readWrite", db: "tradefleet_analytics" }],
});
db.getSiblingDB("admin").createUser({
  user: "backup_runner",
  pwd: backupPassword,
  roles: [{ role: "read", db: "tradefleet_analytics" }],
});
