"""Azure Resource Graph: POST /providers/Microsoft.ResourceGraph/resources over the simulated estate."""
