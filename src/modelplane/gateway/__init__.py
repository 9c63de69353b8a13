"""The data plane: a lean HTTP layer, replica choice, the cold-start queue and protocol fronts."""
