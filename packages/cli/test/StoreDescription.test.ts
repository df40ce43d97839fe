import { describe, expect, it } from "@effect/vitest"
import { describeStore } from "../src/internal/store.js"

// Store URLs end up in span attributes (nixfx.from, nixfx.to): no secrets.
describe("describeStore", () => {
  it("masks a password and leaves other URLs as they are", () => {
    expect(describeStore("postgres://nixfx:s3cret@db.example:5432/nixfx?blobs=/srv/blobs")).toBe(
      "postgres://nixfx:***@db.example:5432/nixfx?blobs=/srv/blobs"
    )
    expect(describeStore("sqlite:///var/lib/nixfx")).toBe("sqlite:///var/lib/nixfx")
    expect(describeStore("nix+https://cache.example/?trusted-public-keys=k:AAAA")).toBe(
      "nix+https://cache.example/?trusted-public-keys=k:AAAA"
    )
  })

  it("does not show a composition document", () => {
    expect(describeStore(` {"stores": {"root": "postgres://u:pw@h/db?blobs=/b"}}`)).toBe("(composition document)")
  })
})
