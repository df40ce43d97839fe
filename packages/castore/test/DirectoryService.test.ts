import { DirectoryService } from "@nixfx/castore"
import { directoryServiceSuite } from "@nixfx/castore/testing"

directoryServiceSuite("memory", DirectoryService.layerMemory)
