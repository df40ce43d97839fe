import * as PathInfoService from "@nixfx/pathinfo/PathInfoService"
import { pathInfoServiceSuite } from "@nixfx/pathinfo/testing"

pathInfoServiceSuite("PathInfoService.layerMemory", PathInfoService.layerMemory)
