# syntax=docker/dockerfile:1
# Build stage: install everything, compile, then keep production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

# Runtime stage: no compiler, no npm cache, non-root.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# the image's "node" user (uid 1000); state (dev PKI, audit log) lives in a volume
USER 1000:1000
VOLUME ["/var/lib/registration-bridge"]
EXPOSE 8883 8080
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--state-dir", "/var/lib/registration-bridge"]
