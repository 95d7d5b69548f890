# nautico-followups: one image, every role. The command picks the role:
#   docker run ... nautico-followups api | relay | worker | start | migrate
# `scripts/check-dockerfile.mjs` replays this file without a Docker engine (in `npm test`):
# keep every RUN working inside WORKDIR (relative paths), apt-get aside.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the TypeScript build) needs the sources, copied next.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# Build, then drop the dev dependencies (TypeScript, tsx, types), and the type declarations
# and source maps that nothing reads at run time (about a third of node_modules: openai's alone).
RUN npm run build && npm prune --omit=dev --no-audit --no-fund \
  && find dist node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
  && chmod +x dist/cli.js && mkdir -p bin && ln -s ../dist/cli.js bin/followups

FROM node:24-bookworm-slim
# tini as PID 1: forwards SIGTERM/SIGINT to node and reaps zombies, so a role shuts down
# gracefully on `docker stop` (no need for `docker run --init`).
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# A container is reached from outside: listen on every interface (the embedded default binds 127.0.0.1).
ENV HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY package.json ./
# The embedded default (no DATABASE_URL) keeps its PGlite files here: writable by `node`.
RUN mkdir -p .followups-data && chown node:node .followups-data
# `followups status`, `followups migrate`, ... inside the container (docker exec).
ENV PATH=/app/bin:$PATH
# The base image's unprivileged user.
USER node
EXPOSE 3000
# Ready = the database answers (a down queue or paused sending is "degraded", still 200).
# Roles without the API (relay, worker) turn this off in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/ready').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli.js"]
CMD ["start"]
